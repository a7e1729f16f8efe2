-- The example DAGs' CRM: one contact per email address (lower-cased), with the custom fields the
-- Housecall Pro use cases fill in. Portable SQL (SQLite, PostgreSQL, MySQL); created if missing.
CREATE TABLE IF NOT EXISTS crm_contacts (
    email            VARCHAR(320) NOT NULL PRIMARY KEY,
    first_name       VARCHAR(100),
    last_name        VARCHAR(100),
    phone            VARCHAR(32),
    hcp_customer_id  VARCHAR(64),
    tags             VARCHAR(1000),
    hcp_job_id       VARCHAR(64),
    scheduled_window VARCHAR(200),
    lifecycle_stage  VARCHAR(64),
    updated_at       VARCHAR(32)
)
