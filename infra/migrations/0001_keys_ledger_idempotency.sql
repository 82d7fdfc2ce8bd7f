-- API keys: only the SHA-256 of each secret is stored; the id is the public part of the key.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,            -- ms since epoch
  revoked_at INTEGER,                     -- ms since epoch; set = the key fails at once
  budget_nanos INTEGER,                   -- 1e-9 USD; NULL = unlimited
  spent_nanos INTEGER NOT NULL DEFAULT 0, -- kept equal to SUM(ledger.price_nanos) by the ledger batch
  rate_limit_per_minute INTEGER,          -- NULL = the configured default
  cache_scope TEXT NOT NULL DEFAULT 'key' CHECK (cache_scope IN ('key', 'shared'))
);

-- The ledger: exactly one row per billed request id.
CREATE TABLE ledger (
  request_id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL REFERENCES api_keys (id),
  path TEXT NOT NULL CHECK (path IN ('cache', 'small', 'large')),
  mode TEXT NOT NULL,
  model TEXT NOT NULL,
  accelerator_ms_small REAL NOT NULL DEFAULT 0,
  accelerator_ms_large REAL NOT NULL DEFAULT 0,
  gpu_class_small TEXT,
  gpu_class_large TEXT,
  visual_tokens_total INTEGER NOT NULL,
  visual_tokens_kept INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  price_nanos INTEGER NOT NULL CHECK (price_nanos >= 0),
  created_at INTEGER NOT NULL,            -- ms since epoch
  day TEXT NOT NULL                       -- UTC YYYY-MM-DD of created_at
);
CREATE INDEX ledger_key_day ON ledger (key_id, day);

-- Idempotency-Key reservations: 'pending' while the first request runs, 'done' with its response after.
CREATE TABLE idempotency (
  key_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  body_hash TEXT NOT NULL,
  request_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
  response TEXT,
  expires_at INTEGER NOT NULL,            -- ms since epoch; an expired row no longer binds the key
  PRIMARY KEY (key_id, idem_key)
);
