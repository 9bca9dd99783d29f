"""Labels on conversations, and who answered each conversation last (`responded_by`, with the
agent), filled in for existing conversations from their last bot or agent message."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

_LAST_REPLY = ("FROM message m WHERE m.conversation_id = conversation.id AND m.direction = 'outgoing' "
               "AND m.private = false AND m.author_kind IN ('bot', 'agent') ORDER BY m.id DESC LIMIT 1")
BACKFILL = (f"UPDATE conversation SET responded_by = (SELECT m.author_kind {_LAST_REPLY}), "
            f"responded_by_agent_id = (SELECT m.agent_id {_LAST_REPLY})")


class Migration(migrations.Migration):
    dependencies = [('models', '0008_ticket_read')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Label',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=40)),
                ('key', fields.CharField(unique=True, max_length=160)),
                ('color', fields.CharField(max_length=7)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'label', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A label agents put on conversations ("refund", "needs-human"), shown in `color` (`#rrggbb`).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConversationLabel',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='label_links', on_delete=OnDelete.CASCADE)),
                ('label', fields.ForeignKeyField('models.Label', source_field='label_id', db_index=True, db_constraint=True, to_field='id', related_name='conversation_links', on_delete=OnDelete.CASCADE)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', null=True, db_constraint=True, to_field='id', related_name='label_links', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'conversation_label', 'app': 'models', 'unique_together': (('conversation', 'label'),), 'pk_attr': 'id', 'table_description': 'A label on a conversation, put there by `agent` (its tickets show the conversation\'s labels).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Conversation',
            name='responded_by',
            field=fields.CharField(null=True, db_index=True, max_length=8),
        ),
        ops.AddField(
            model_name='Conversation',
            name='responded_by_agent',
            field=fields.ForeignKeyField('models.Agent', source_field='responded_by_agent_id', null=True, db_constraint=True, to_field='id', related_name='responded_conversations', on_delete=OnDelete.SET_NULL),
        ),
        ops.RunSQL(BACKFILL, reverse_sql="SELECT 1"),
    ]
