from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0014_live_event')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Conversation',
            name='customer_messages',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['conversation_id', 'id']),
        ),
    ]
