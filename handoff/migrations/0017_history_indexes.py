from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_bot_while_waiting')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['ticket_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Event',
            index=Index(fields=['conversation_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['conversation_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['assignee_id', 'status']),
        ),
    ]
