from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_outbox_claimed_by')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Message',
            name='sender',
            field=fields.JSONField(null=True),
        ),
    ]
