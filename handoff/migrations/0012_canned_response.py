from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_mentions_and_notifications')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CannedResponse',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('short_code', fields.CharField(unique=True, max_length=50)),
                ('content', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'canned_response', 'app': 'models', 'pk_attr': 'id', 'table_description': "A saved reply (Chatwoot's canned response): an agent types `/<short_code>` in the desk's"},
            bases=['Model'],
        ),
    ]
