from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_ticket_read')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['conversation_id', 'id']),
        ),
    ]
