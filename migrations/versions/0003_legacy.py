"""legacy systems and accounts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('legacy_systems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('agency', sa.String(length=200), nullable=False),
    sa.Column('hash_scheme', sa.String(length=32), nullable=False),
    sa.Column('salt_position', sa.String(length=8), nullable=True),
    sa.Column('encoding', sa.Enum('utf-8', 'cp1258', name='legacy_encoding', native_enum=False, length=32), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("salt_position IS NULL OR salt_position IN ('before', 'after')", name=op.f('ck_legacy_systems_salt_position')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_legacy_systems_client_id_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legacy_systems')),
    sa.UniqueConstraint('client_id', name=op.f('uq_legacy_systems_client_id')),
    sa.UniqueConstraint('slug', name=op.f('uq_legacy_systems_slug'))
    )
    op.create_table('legacy_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=False),
    sa.Column('legacy_user_id', sa.String(length=128), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=True),
    sa.Column('username_key', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=512), nullable=True),
    sa.Column('hash_scheme', sa.String(length=32), nullable=True),
    sa.Column('salt', sa.String(length=256), nullable=True),
    sa.Column('personal_number', sa.String(length=12), nullable=True),
    sa.Column('id_number', sa.String(length=9), nullable=True),
    sa.Column('tax_code', sa.String(length=14), nullable=True),
    sa.Column('full_name', sa.String(length=200), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('gender', sa.String(length=8), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.Column('link_state', sa.Enum('unlinked', 'auto_linked', 'claimed', 'conflict', 'rejected', name='legacy_link_state', native_enum=False, length=32), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=True),
    sa.Column('candidate_identity_id', sa.Uuid(), nullable=True),
    sa.Column('conflict_reason', sa.String(length=200), nullable=True),
    sa.Column('linked_by', sa.String(length=64), nullable=True),
    sa.Column('linked_at', sa.DateTime(), nullable=True),
    sa.Column('import_run', sa.String(length=32), nullable=False),
    sa.Column('source_line', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(link_state IN ('auto_linked', 'claimed')) = (identity_id IS NOT NULL)", name=op.f('ck_legacy_accounts_linked_has_identity')),
    sa.ForeignKeyConstraint(['candidate_identity_id'], ['identities.id'], name=op.f('fk_legacy_accounts_candidate_identity_id_identities')),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_legacy_accounts_identity_id_identities')),
    sa.ForeignKeyConstraint(['system_id'], ['legacy_systems.id'], name=op.f('fk_legacy_accounts_system_id_legacy_systems')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legacy_accounts')),
    sa.UniqueConstraint('system_id', 'legacy_user_id', name='uq_legacy_accounts_system_user')
    )
    with op.batch_alter_table('legacy_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_legacy_accounts_id_number', ['id_number'], unique=False, sqlite_where=sa.text('id_number IS NOT NULL'), postgresql_where=sa.text('id_number IS NOT NULL'))
        batch_op.create_index('ix_legacy_accounts_candidate', ['candidate_identity_id'], unique=False, sqlite_where=sa.text('candidate_identity_id IS NOT NULL'), postgresql_where=sa.text('candidate_identity_id IS NOT NULL'))
        batch_op.create_index('ix_legacy_accounts_conflicts', ['updated_at', 'id'], unique=False, sqlite_where=sa.text("link_state = 'conflict'"), postgresql_where=sa.text("link_state = 'conflict'"))
        batch_op.create_index('ix_legacy_accounts_identity_id', ['identity_id'], unique=False, sqlite_where=sa.text('identity_id IS NOT NULL'), postgresql_where=sa.text('identity_id IS NOT NULL'))
        batch_op.create_index(batch_op.f('ix_legacy_accounts_personal_number'), ['personal_number'], unique=False)
        batch_op.create_index('ix_legacy_accounts_system_state', ['system_id', 'link_state'], unique=False)
        batch_op.create_index('ix_legacy_accounts_system_username', ['system_id', 'username_key'], unique=False)

    op.create_table('legacy_import_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=500), nullable=False),
    sa.Column('file_format', sa.String(length=8), nullable=False),
    sa.Column('encoding', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('rows_imported', sa.Integer(), nullable=False),
    sa.Column('rows_rejected', sa.Integer(), nullable=False),
    sa.Column('fields_dropped', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['system_id'], ['legacy_systems.id'], name=op.f('fk_legacy_import_runs_system_id_legacy_systems')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legacy_import_runs'))
    )
    with op.batch_alter_table('legacy_import_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legacy_import_runs_system_id'), ['system_id'], unique=False)


def downgrade():
    with op.batch_alter_table('legacy_import_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legacy_import_runs_system_id'))

    op.drop_table('legacy_import_runs')
    with op.batch_alter_table('legacy_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_legacy_accounts_system_username')
        batch_op.drop_index('ix_legacy_accounts_system_state')
        batch_op.drop_index(batch_op.f('ix_legacy_accounts_personal_number'))
        batch_op.drop_index('ix_legacy_accounts_identity_id', sqlite_where=sa.text('identity_id IS NOT NULL'), postgresql_where=sa.text('identity_id IS NOT NULL'))
        batch_op.drop_index('ix_legacy_accounts_id_number', sqlite_where=sa.text('id_number IS NOT NULL'), postgresql_where=sa.text('id_number IS NOT NULL'))
        batch_op.drop_index('ix_legacy_accounts_candidate', sqlite_where=sa.text('candidate_identity_id IS NOT NULL'), postgresql_where=sa.text('candidate_identity_id IS NOT NULL'))
        batch_op.drop_index('ix_legacy_accounts_conflicts', sqlite_where=sa.text("link_state = 'conflict'"), postgresql_where=sa.text("link_state = 'conflict'"))

    op.drop_table('legacy_accounts')
    op.drop_table('legacy_systems')
