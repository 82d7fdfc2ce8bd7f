-- Shadow escalation (README, "Shadow escalation and the quality dial"): one row per sampled stitch-sgl exit decision,
-- reported by the small function (an early exit with its shadow run, or an escalation). Nothing of the image or the
-- text: the pack pair, the decision score, the threshold and calibration used, whether the large model's normalised
-- answer agreed, and the shadow run's accelerator time, which is the operator's cost (billed to no key; not in the
-- ledger).
CREATE TABLE shadow_samples (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL UNIQUE,        -- the shadowed request's id: a repeated report is kept once
  pair TEXT NOT NULL,                     -- "<small pack>|<large pack>", as the answer's models name them
  decision REAL NOT NULL,
  threshold REAL NOT NULL,
  calibration TEXT NOT NULL,
  agree INTEGER NOT NULL CHECK (agree IN (0, 1)),
  accelerator_ms_large REAL NOT NULL,     -- the shadow run's; 0 for an escalation (billed to its key as usual)
  gpu_class_large TEXT,                   -- NULL for an escalation: no shadow run
  created_at INTEGER NOT NULL             -- ms since epoch
);
CREATE INDEX shadow_samples_pair ON shadow_samples (pair, id);
-- A key whose customer requires it opts out: none of its requests is sampled (1 = sampled, the default).
ALTER TABLE api_keys ADD COLUMN shadow INTEGER NOT NULL DEFAULT 1 CHECK (shadow IN (0, 1));
