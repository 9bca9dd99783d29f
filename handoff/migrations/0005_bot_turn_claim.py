from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_message_edits_and_pending_receipts')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Conversation',
            name='bot_turn_holder',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='Conversation',
            name='bot_turn_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
