-- 0003_workflow.sql: approvals for out-of-policy decisions, complaint rules, and the flag that
-- keeps automatic complaint escalation to once per ticket until it is de-escalated.

ALTER TABLE tickets ADD COLUMN complaint_escalated boolean NOT NULL DEFAULT false;

CREATE TABLE approvals (
    id              bigserial PRIMARY KEY,
    ticket_id       bigint NOT NULL REFERENCES tickets (id),
    kind            text NOT NULL
                    CHECK (kind IN ('refund', 'credit', 'comp', 'discount', 'exception', 'off_policy_reply')),
    amount_minor    bigint CHECK (amount_minor >= 0),
    currency        text CHECK (currency ~ '^[A-Z]{3}$'),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
    requested_by    bigint NOT NULL REFERENCES users (id),
    requested_at    timestamptz NOT NULL,
    reason          text,                 -- free text; its digest is in the approval.requested event
    decided_by      bigint REFERENCES users (id),
    decided_at      timestamptz,
    decision_reason text,                 -- free text; digest in the approval.decided event
    CHECK ((status = 'pending') = (decided_by IS NULL)),
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX approvals_ticket ON approvals (ticket_id);
CREATE INDEX approvals_status ON approvals (status, requested_at DESC);

CREATE TABLE complaint_rules (
    id         bigserial PRIMARY KEY,
    pattern    text NOT NULL CHECK (length(pattern) BETWEEN 1 AND 200),
    match      text NOT NULL DEFAULT 'keyword' CHECK (match IN ('keyword', 'regex')),
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Defaults: common English and Roman Urdu (and Urdu script) complaint words. Keywords match as
-- case-insensitive substrings of the message text.
INSERT INTO complaint_rules (pattern) VALUES
    ('refund'), ('complaint'), ('complain'), ('fraud'), ('scam'), ('cheated'), ('chargeback'),
    ('not received'), ('never received'), ('never arrived'), ('not delivered'), ('damaged'),
    ('broken'), ('defective'), ('worst'), ('terrible'), ('unacceptable'), ('consumer court'),
    ('paise wapas'), ('paisay wapas'), ('paise wapis'), ('wapas karo'), ('dhoka'), ('dhokha'),
    ('bakwas'), ('ghatiya'), ('nahi mila'), ('nahin mila'), ('nahi aya'), ('nahi aaya'),
    ('toota'), ('tuta hua'), ('kharab'), ('shikayat'),
    ('شکایت'), ('دھوکہ'), ('نہیں ملا'), ('نہیں آیا'), ('پیسے واپس');
