from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_canned_response')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AgentPresence',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.OneToOneField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='presence', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharField(default='online', max_length=8)),
                ('last_assigned_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'agent_presence', 'app': 'models', 'pk_attr': 'id', 'table_description': "An agent's own availability and routing mark"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AgentConnection',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='connections', on_delete=OnDelete.CASCADE)),
                ('instance', fields.CharField(max_length=32)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'agent_connection', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One open desk stream of an agent'},
            bases=['Model'],
        ),
    ]
