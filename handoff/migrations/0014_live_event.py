from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0013_agent_presence')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LiveEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('data', fields.JSONField(default=dict)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'live_event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A live event, in the order clients see them (`id` is its `seq`): the log a desk stream'},
            bases=['Model'],
        ),
    ]
