from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Outbox',
            name='first_part_id',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name='Outbox',
            name='parts_sent',
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
