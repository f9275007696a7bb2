#!/bin/sh
# The webhook receiver's database role: it faces the internet, so it is not the superuser
# (POSTGRES_USER) and cannot change the schema. It reads and writes rows of the catalog's
# tables, those that exist now and those bootstrap's migrations create later as the
# catalog's owner. Run by the postgres image once, when the data volume is first created
# (after 10-lightbox.sql made the catalog database); safe to run again by hand.
set -eu
: "${LIGHTBOX_RECEIVER_DB_PASSWORD:?set LIGHTBOX_RECEIVER_DB_PASSWORD in infra/.env}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "${LIGHTBOX_CATALOG_DB:-lightbox}" \
  -v receiver="${LIGHTBOX_RECEIVER_ROLE:-lightbox_receiver}" \
  -v owner="${LIGHTBOX_CATALOG_OWNER:-lightbox}" \
  -v catalog="${LIGHTBOX_CATALOG_DB:-lightbox}" \
  -v receiver_password="$LIGHTBOX_RECEIVER_DB_PASSWORD" <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'receiver') AS create_role \gset
\if :create_role
CREATE ROLE :"receiver" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
\endif
ALTER ROLE :"receiver" PASSWORD :'receiver_password';
GRANT CONNECT ON DATABASE :"catalog" TO :"receiver";
GRANT USAGE ON SCHEMA public TO :"receiver";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CREATE ON SCHEMA public TO :"owner";
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO :"receiver";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"receiver";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE ON TABLES TO :"receiver";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO :"receiver";
SQL
