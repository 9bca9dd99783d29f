from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_message_sender')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TicketRead',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='reads', on_delete=OnDelete.CASCADE)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='ticket_reads', on_delete=OnDelete.CASCADE)),
                ('last_read_message_id', fields.IntField(default=0)),
                ('read_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'ticket_read', 'app': 'models', 'unique_together': (('ticket', 'agent'),), 'pk_attr': 'id', 'table_description': 'How far one agent has read one ticket: the id of the last customer message on the ticket'},
            bases=['Model'],
        ),
    ]
