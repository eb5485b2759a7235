ALTER TABLE invoices DROP COLUMN IF EXISTS stripe_event_created;
