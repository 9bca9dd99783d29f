from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_bot_turn_claim')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Outbox',
            name='claimed_by',
            field=fields.CharField(null=True, max_length=32),
        ),
    ]
