-- The prompt tokens a cache served (an answer-cache hit: the whole prompt; a vision-cache hit: the visual tokens), as
-- the answer's usage.prompt_tokens_details.cached_tokens (chat) and usage.input_tokens_details.cached_tokens
-- (Responses) report them. Rows written before this column have 0: no cache was counted then.
ALTER TABLE ledger ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
