"""audit log and admin

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # --- audit log (idp/audit) -------------------------------------------------------------
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=True),
    sa.Column('target_id', sa.String(length=100), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('content', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('salt', sa.String(length=32), nullable=True),
    sa.Column('personal_hash', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('redacted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_action_at', ['action', 'at'], unique=False)
        batch_op.create_index('ix_audit_log_target', ['target_type', 'target_id'], unique=False)
        batch_op.create_index('ix_audit_log_actor_at', ['actor', 'at'], unique=False)
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    # The head exists from the start, so concurrent first writers never race to create it.
    op.execute("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, '" + "0" * 64 + "')")
    # --- end of audit log ------------------------------------------------------------------

    # --- admin (idp/admin) ----------------------------------------------------------------
    op.create_table('identity_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('evidence_type', sa.String(length=32), nullable=False),
    sa.Column('document_number', sa.String(length=32), nullable=False),
    sa.Column('officer_id', sa.Uuid(), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.CheckConstraint('level IN (1, 2)', name=op.f('ck_identity_verifications_level')),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_identity_verifications_identity_id_identities')),
    sa.ForeignKeyConstraint(['officer_id'], ['identities.id'], name=op.f('fk_identity_verifications_officer_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_verifications'))
    )
    with op.batch_alter_table('identity_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_verifications_identity_id'), ['identity_id'], unique=False)

    op.create_table('identity_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survivor_id', sa.Uuid(), nullable=False),
    sa.Column('merged_id', sa.Uuid(), nullable=False),
    sa.Column('officer_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['merged_id'], ['identities.id'], name=op.f('fk_identity_merges_merged_id_identities')),
    sa.ForeignKeyConstraint(['officer_id'], ['identities.id'], name=op.f('fk_identity_merges_officer_id_identities')),
    sa.ForeignKeyConstraint(['survivor_id'], ['identities.id'], name=op.f('fk_identity_merges_survivor_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_merges')),
    sa.UniqueConstraint('merged_id', name=op.f('uq_identity_merges_merged_id'))
    )
    with op.batch_alter_table('identity_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_merges_survivor_id'), ['survivor_id'], unique=False)

    # Identity search: exact identifier values (current and history), name prefix in order.
    with op.batch_alter_table('identifiers', schema=None) as batch_op:
        batch_op.create_index('ix_identifiers_value', ['value'], unique=False)
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index('ix_identities_name_search_prefix', ['name_search', 'id'], unique=False,
                              postgresql_ops={'name_search': 'text_pattern_ops'})
    # --- end of admin ----------------------------------------------------------------------


def downgrade():
    # --- admin (idp/admin) ----------------------------------------------------------------
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index('ix_identities_name_search_prefix')
    with op.batch_alter_table('identifiers', schema=None) as batch_op:
        batch_op.drop_index('ix_identifiers_value')
    with op.batch_alter_table('identity_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_merges_survivor_id'))
    op.drop_table('identity_merges')
    with op.batch_alter_table('identity_verifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_verifications_identity_id'))
    op.drop_table('identity_verifications')
    # --- end of admin ----------------------------------------------------------------------

    # --- audit log (idp/audit) -------------------------------------------------------------
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_at')
        batch_op.drop_index('ix_audit_log_actor_at')
        batch_op.drop_index('ix_audit_log_target')
        batch_op.drop_index('ix_audit_log_action_at')
    op.drop_table('audit_log')
    # --- end of audit log ------------------------------------------------------------------
