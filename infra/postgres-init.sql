-- The compose stack's PostgreSQL holds two databases: "prefect" (POSTGRES_DB, the Prefect
-- server's) and "lightbox" (the catalog). Runs once, when the data volume is first created.
CREATE DATABASE lightbox OWNER lightbox;
