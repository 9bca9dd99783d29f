from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_ticket_read')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LiveEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('origin', fields.CharField(max_length=32)),
                ('everywhere', fields.BooleanField(default=True)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'live_event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A live event the hub carried, in the order clients see them: the log a desk stream'},
            bases=['Model'],
        ),
    ]
