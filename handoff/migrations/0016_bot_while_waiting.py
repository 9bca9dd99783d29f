from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0015_hot_path')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Conversation',
            name='bot_while_waiting',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
