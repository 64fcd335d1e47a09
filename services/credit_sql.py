"""The credit ledger's SQL contract on PostgreSQL: lots, spending and expiry as SQL functions.

A product backend that shares the database spends credits without importing this app:

    SELECT * FROM consume_credits('cus_123', 25, 'order-9812', 'order 9812');
    SELECT available, paid, promotional, pending FROM credit_balance WHERE customer_id = 'cus_123';

Migration 10 creates these functions and the view (`_v10_credit_lots`); `admin-app db setup`
makes `billing_owner` their owner and grants EXECUTE/SELECT (services.pg_security). On SQLite the
same rules are Python (`services.lots`); the tests run both against the same cases.

The rules, the same in both:

* Every ledger entry with a positive amount opens one lot (purchase, grant, plan_renewal);
  promotional lots (grants) have priority 0, paid ones 1.
* A negative entry draws from the customer's live lots (remaining > 0, not expired) in this
  order: (a clawback: its own purchase's lot first), priority, soonest expiry (no expiry last),
  oldest, lowest id. What no lot covers is overdraft (`credit_account.debt`); a new lot pays
  the overdraft back first.
* Every change of one customer's ledger holds that customer's `credit_account` row (FOR UPDATE);
  `absorbed_to` is the last ledger entry turned into lots.
* Errors: SQLSTATE CB001 insufficient credits, CB002 an idempotency key reused with another
  customer or amount, 22023 bad input, P0002 no such customer.
"""

from __future__ import annotations

#: SQLSTATEs raised by consume_credits.
INSUFFICIENT = "CB001"
KEY_REUSED = "CB002"

#: Every function of the contract (name and argument types), for ownership and grants.
FUNCTIONS = (
    "billing_credit_lock(text)",
    "billing_open_lot(bigint)",
    "billing_draw(text, bigint, bigint, bigint, bigint, bigint)",
    "billing_absorb(text)",
    "billing_available(text, bigint)",
    "billing_expire_credits()",
    "consume_credits(text, bigint, text, text)",
    "billing_true_up(text)",
)

# {s}: the schema, quoted. Frozen as migration 10 created it (a later change is a new migration).
V10_SQL = """
CREATE OR REPLACE FUNCTION {s}.billing_credit_lock(p_customer text) RETURNS {s}.credit_account
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE acc credit_account;
BEGIN
  INSERT INTO credit_account (customer_id, overdraft_limit, debt, absorbed_to)
    VALUES (p_customer, 0, 0, 0) ON CONFLICT (customer_id) DO NOTHING;
  SELECT * INTO acc FROM credit_account WHERE customer_id = p_customer FOR UPDATE;
  RETURN acc;
END $$;

CREATE OR REPLACE FUNCTION {s}.billing_open_lot(p_entry bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE
  e credit_entry;
  lot_kind text;
  lot_id bigint;
  owed bigint;
  take bigint;
BEGIN
  SELECT * INTO e FROM credit_entry WHERE id = p_entry;
  lot_kind := CASE WHEN e.kind IN ('purchase', 'plan_renewal') THEN e.kind ELSE 'grant' END;
  INSERT INTO credit_lot (customer_id, entry_id, kind, priority, amount, remaining, source,
                          created_at, expires_at)
    VALUES (e.customer_id, e.id, lot_kind, CASE WHEN lot_kind = 'grant' THEN 0 ELSE 1 END,
            e.amount, e.amount, coalesce(e.topup_id, e.source), e.created_at, e.expires_at)
    RETURNING id INTO lot_id;
  SELECT debt INTO owed FROM credit_account WHERE customer_id = e.customer_id;
  IF owed > 0 THEN
    take := least(owed, e.amount);
    UPDATE credit_lot SET remaining = remaining - take WHERE id = lot_id;
    UPDATE credit_account SET debt = debt - take WHERE customer_id = e.customer_id;
    INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (e.id, lot_id, take);
  END IF;
END $$;

-- Draw p_credits for entry p_entry; false (nothing written) when that would take the overdraft
-- past p_debt_limit (NULL: no limit, for clawbacks). The caller holds the account lock.
CREATE OR REPLACE FUNCTION {s}.billing_draw(p_customer text, p_entry bigint, p_credits bigint,
                                          p_now bigint, p_first_lot bigint, p_debt_limit bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE
  lot record;
  need bigint := p_credits;
  live bigint;
  owed bigint;
  take bigint;
BEGIN
  SELECT debt INTO owed FROM credit_account WHERE customer_id = p_customer;
  IF p_debt_limit IS NOT NULL THEN
    SELECT coalesce(sum(remaining), 0) INTO live FROM credit_lot
      WHERE customer_id = p_customer AND remaining > 0
        AND (expires_at IS NULL OR expires_at > p_now);
    IF owed + greatest(0, p_credits - live) > p_debt_limit THEN
      RETURN false;
    END IF;
  END IF;
  FOR lot IN SELECT id, remaining FROM credit_lot
      WHERE customer_id = p_customer AND remaining > 0
        AND (expires_at IS NULL OR expires_at > p_now)
      ORDER BY CASE WHEN id = p_first_lot THEN 0 ELSE 1 END, priority,
               CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, created_at, id
  LOOP
    EXIT WHEN need = 0;
    take := least(need, lot.remaining);
    UPDATE credit_lot SET remaining = remaining - take WHERE id = lot.id;
    INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (p_entry, lot.id, take);
    need := need - take;
  END LOOP;
  IF need > 0 THEN
    UPDATE credit_account SET debt = debt + need WHERE customer_id = p_customer;
    INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (p_entry, NULL, need);
  END IF;
  RETURN true;
END $$;

-- Turn the customer's ledger entries written since the last time into lots and draws.
CREATE OR REPLACE FUNCTION {s}.billing_absorb(p_customer text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE
  acc credit_account;
  e credit_entry;
  first_lot bigint;
  paid_for text;
  n integer := 0;
  last_id bigint;
  now_s bigint := extract(epoch FROM clock_timestamp())::bigint;
BEGIN
  acc := billing_credit_lock(p_customer);
  FOR e IN SELECT * FROM credit_entry
      WHERE customer_id = p_customer AND id > acc.absorbed_to ORDER BY id
  LOOP
    IF e.amount > 0 THEN
      PERFORM billing_open_lot(e.id);
    ELSIF e.amount < 0 THEN
      first_lot := NULL;
      paid_for := CASE WHEN e.kind = 'clawback' THEN coalesce(
        e.topup_id, CASE WHEN e.source LIKE 'unpaid:%' THEN substr(e.source, 8) END) END;
      IF paid_for IS NOT NULL THEN
        SELECT l.id INTO first_lot FROM credit_lot l JOIN credit_entry p ON p.id = l.entry_id
          WHERE p.kind = 'purchase' AND p.source = paid_for AND l.customer_id = p_customer;
      END IF;
      PERFORM billing_draw(p_customer, e.id, -e.amount, now_s, first_lot, NULL);
    END IF;
    last_id := e.id;
    n := n + 1;
  END LOOP;
  IF n > 0 THEN
    UPDATE credit_account SET absorbed_to = last_id WHERE customer_id = p_customer;
  END IF;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION {s}.billing_available(p_customer text, p_now bigint) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
  SELECT coalesce((SELECT sum(l.remaining) FROM credit_lot l
                   WHERE l.customer_id = p_customer AND l.remaining > 0
                     AND (l.expires_at IS NULL OR l.expires_at > p_now)), 0)
       - coalesce((SELECT a.debt FROM credit_account a WHERE a.customer_id = p_customer), 0)
       + coalesce((SELECT sum(e.amount) FROM credit_entry e
                   WHERE e.customer_id = p_customer
                     AND e.id > coalesce((SELECT a.absorbed_to FROM credit_account a
                                          WHERE a.customer_id = p_customer), 0)), 0)
$$;

-- Write an `expiry` entry for what is left of every lot whose time has come (once: the lot is
-- then empty, and (kind, source) is unique). Returns how many lots expired.
CREATE OR REPLACE FUNCTION {s}.billing_expire_credits() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE
  due record;
  l credit_lot;
  new_id bigint;
  n integer := 0;
  now_s bigint := extract(epoch FROM clock_timestamp())::bigint;
BEGIN
  FOR due IN SELECT id, customer_id FROM credit_lot
      WHERE expires_at <= now_s AND remaining > 0 ORDER BY expires_at, id
  LOOP
    PERFORM billing_absorb(due.customer_id);
    SELECT * INTO l FROM credit_lot WHERE id = due.id;
    IF l.remaining > 0 THEN
      INSERT INTO credit_entry (customer_id, amount, kind, source, operator, reason, created_at)
        VALUES (l.customer_id, -l.remaining, 'expiry', 'expiry:' || l.id, 'expiry',
                format('%s of %s credits (%s, lot %s) expired', l.remaining, l.amount, l.kind,
                       l.id), l.expires_at)
        RETURNING id INTO new_id;
      INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (new_id, l.id, l.remaining);
      UPDATE credit_lot SET remaining = 0 WHERE id = l.id;
      UPDATE credit_account SET absorbed_to = new_id WHERE customer_id = l.customer_id;
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END $$;

-- THE PRODUCT'S WAY TO SPEND: exactly once per key, never below zero (or the customer's
-- overdraft limit). A retry with the same key returns the first spend (replayed = true).
CREATE OR REPLACE FUNCTION {s}.consume_credits(p_customer text, p_credits bigint, p_key text,
                                             p_reference text DEFAULT NULL)
RETURNS TABLE (entry_id bigint, credits bigint, available bigint, replayed boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE
  acc credit_account;
  prior credit_entry;
  new_id bigint;
  now_s bigint := extract(epoch FROM clock_timestamp())::bigint;
BEGIN
  IF p_credits IS NULL OR p_credits <= 0 THEN
    RAISE EXCEPTION 'credits must be a positive whole number, not %', p_credits
      USING ERRCODE = '22023';
  END IF;
  IF p_key IS NULL OR btrim(p_key) = '' OR length(p_key) > 255 THEN
    RAISE EXCEPTION 'an idempotency key of 1 to 255 characters is needed'
      USING ERRCODE = '22023';
  END IF;
  IF length(coalesce(p_reference, '')) > 500 THEN
    RAISE EXCEPTION 'the reference is longer than 500 characters' USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM customer WHERE stripe_id = p_customer) THEN
    RAISE EXCEPTION 'no customer %', p_customer USING ERRCODE = 'P0002';
  END IF;
  PERFORM billing_absorb(p_customer);  -- takes the customer's lock
  SELECT * INTO acc FROM credit_account WHERE customer_id = p_customer;
  SELECT * INTO prior FROM credit_entry e WHERE e.kind = 'spend' AND e.source = p_key;
  IF FOUND THEN
    IF prior.customer_id <> p_customer OR prior.amount <> -p_credits THEN
      RAISE EXCEPTION 'idempotency key % was already used to spend % credits of %', p_key,
        -prior.amount, prior.customer_id USING ERRCODE = 'CB002';
    END IF;
    RETURN QUERY SELECT prior.id::bigint, p_credits, billing_available(p_customer, now_s), true;
    RETURN;
  END IF;
  BEGIN
    INSERT INTO credit_entry (customer_id, amount, kind, source, operator, reason, created_at)
      VALUES (p_customer, -p_credits, 'spend', p_key, session_user, p_reference, now_s)
      RETURNING id INTO new_id;
  EXCEPTION WHEN unique_violation THEN  -- the same key, for another customer, meanwhile
    RAISE EXCEPTION 'idempotency key % was already used', p_key USING ERRCODE = 'CB002';
  END;
  IF NOT billing_draw(p_customer, new_id, p_credits, now_s, NULL, acc.overdraft_limit) THEN
    RAISE EXCEPTION 'insufficient credits: % has % available, % asked', p_customer,
      billing_available(p_customer, now_s), p_credits USING ERRCODE = 'CB001';
  END IF;
  UPDATE credit_account SET absorbed_to = new_id WHERE customer_id = p_customer;
  RETURN QUERY SELECT new_id, p_credits, billing_available(p_customer, now_s), false;
END $$;

-- A lot follows its entry when the ledger was edited by hand (reconcile's repair of a purchase
-- credited with more than was paid): the difference goes to what is left, or to overdraft.
CREATE OR REPLACE FUNCTION {s}.billing_true_up(p_customer text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE
  r record;
  left_over bigint;
  n integer := 0;
BEGIN
  PERFORM billing_absorb(p_customer);
  FOR r IN SELECT l.id, l.amount, l.remaining, e.amount AS entry_amount
      FROM credit_lot l JOIN credit_entry e ON e.id = l.entry_id
      WHERE l.customer_id = p_customer AND e.amount <> l.amount
  LOOP
    left_over := r.remaining + r.entry_amount - r.amount;
    UPDATE credit_lot SET amount = r.entry_amount, remaining = greatest(0, left_over)
      WHERE id = r.id;
    IF left_over < 0 THEN
      UPDATE credit_account SET debt = debt - left_over WHERE customer_id = p_customer;
    END IF;
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

REVOKE ALL ON FUNCTION {s}.billing_true_up(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION {s}.billing_credit_lock(text), {s}.billing_open_lot(bigint),
  {s}.billing_draw(text, bigint, bigint, bigint, bigint, bigint), {s}.billing_absorb(text),
  {s}.billing_available(text, bigint), {s}.billing_expire_credits(),
  {s}.consume_credits(text, bigint, text, text) FROM PUBLIC;

-- One row per customer: what may be spent now, and what is pending or expiring.
CREATE OR REPLACE VIEW {s}.credit_balance AS
SELECT c.stripe_id AS customer_id,
       coalesce(l.paid, 0) AS paid,
       coalesce(l.promotional, 0) AS promotional,
       coalesce(a.debt, 0) AS overdraft,
       coalesce(a.overdraft_limit, 0) AS overdraft_limit,
       coalesce(l.paid, 0) + coalesce(l.promotional, 0) - coalesce(a.debt, 0)
         + coalesce((SELECT sum(e.amount) FROM {s}.credit_entry e
                     WHERE e.customer_id = c.stripe_id
                       AND e.id > coalesce(a.absorbed_to, 0)), 0) AS available,
       coalesce((SELECT sum(t.credits) FROM {s}.top_up t
                 WHERE t.customer_id = c.stripe_id
                   AND (t.status = 'pending' OR (t.status = 'open'
                        AND t.expires_at > extract(epoch FROM now())))), 0) AS pending,
       l.next_expiry_at,
       coalesce((SELECT sum(x.remaining) FROM {s}.credit_lot x
                 WHERE x.customer_id = c.stripe_id AND x.remaining > 0
                   AND x.expires_at = l.next_expiry_at), 0) AS next_expiry_credits
FROM {s}.customer c
LEFT JOIN {s}.credit_account a ON a.customer_id = c.stripe_id
LEFT JOIN LATERAL (
  SELECT sum(x.remaining) FILTER (WHERE x.priority > 0) AS paid,
         sum(x.remaining) FILTER (WHERE x.priority = 0) AS promotional,
         min(x.expires_at) AS next_expiry_at
  FROM {s}.credit_lot x
  WHERE x.customer_id = c.stripe_id AND x.remaining > 0
    AND (x.expires_at IS NULL OR x.expires_at > extract(epoch FROM now()))
) l ON true;
"""
