/*-------------------------------------------------------------------------
 *
 * setup.sql
 *		The world of the demo: a small shop with a product catalog, the
 *		outside systems its workers call (a payment provider and a
 *		warehouse, both keyed by the task's idempotency key), the order
 *		workflow, and the orders, started as runs.
 *
 * Everything is deterministic: run ids and inputs are derived from the
 * order number, so that the idempotency keys, and with them the failures
 * that worker.sql injects, are the same on every machine.
 *
 * psql variables: runs, the number of orders to start.
 *
 * IDENTIFICATION
 *		test/demo/setup.sql
 *
 *-------------------------------------------------------------------------
 */

SET client_min_messages = warning;
\pset footer off

CREATE EXTENSION quantum_flow;
CREATE SCHEMA demo;

/* A stable pseudo-random number in [0, 2^28) for a text. */
CREATE FUNCTION demo.hash(t text)
RETURNS integer
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT ('x' || substr(md5(t), 1, 7))::bit(28)::integer
$$;

/* ------------------------------------------------------------------------
 * The shop
 * ------------------------------------------------------------------------ */

CREATE TABLE demo.catalog (
    sku         text          PRIMARY KEY,
    name        text          NOT NULL,
    price       numeric(8, 2) NOT NULL,
    warehouse   text          NOT NULL
);

INSERT INTO demo.catalog (sku, name, price, warehouse) VALUES
    ('BK-1001', 'The Art of Databases',    39.90, 'DUB-1'),
    ('BK-1002', 'Query Planning in Depth', 54.00, 'DUB-1'),
    ('MG-2001', 'Espresso mug',             9.50, 'AMS-2'),
    ('MG-2002', 'Travel mug',              17.25, 'AMS-2'),
    ('TS-3001', 'T-shirt, elephant, M',    22.00, 'AMS-2'),
    ('TS-3002', 'T-shirt, elephant, L',    22.00, 'AMS-2'),
    ('HD-4001', 'Hoodie, grey',            48.00, 'DUB-1'),
    ('ST-5001', 'Sticker pack',             4.20, 'DUB-1'),
    ('KB-6001', 'Mechanical keyboard',    119.00, 'FRA-3'),
    ('MS-6002', 'Wireless mouse',          34.90, 'FRA-3'),
    ('CB-6003', 'USB-C cable, 2 m',         8.90, 'FRA-3'),
    ('LP-6004', 'Laptop stand',            45.50, 'FRA-3');

/* The payment provider: one payment per idempotency key, however often
 * it is asked; a repeated request returns the first payment. */
CREATE TABLE demo.payments (
    idempotency_key varchar(64)   PRIMARY KEY,
    payment_id      text          NOT NULL,
    order_id        text          NOT NULL,
    amount          numeric(10, 2) NOT NULL,
    requests        integer       NOT NULL DEFAULT 1
);

/* The warehouse: one reservation per idempotency key. */
CREATE TABLE demo.reservations (
    idempotency_key varchar(64)   PRIMARY KEY,
    reservation_id  text          NOT NULL,
    sku             text          NOT NULL,
    qty             integer       NOT NULL,
    requests        integer       NOT NULL DEFAULT 1
);

/* Every attempt a worker executed, as the worker saw it. */
CREATE TABLE demo.attempts (
    idempotency_key varchar(64)   NOT NULL,
    step_slug       text          NOT NULL,
    attempt         integer       NOT NULL,
    worker_id       text          NOT NULL,
    succeeded       boolean       NOT NULL,
    error           text
);

/* ------------------------------------------------------------------------
 * The workflow
 *
 *   validate ──┬── charge ─────────────────┬── ship
 *              └── reserve (one per item) ─┘
 *
 * validate outputs the priced line items, so reserve maps over them.
 * base_delay 0: a failed attempt is retried by the next poll.
 * ------------------------------------------------------------------------ */

\echo '== Workflow "order_fulfillment", defined with define_workflow()'
SELECT workflow_slug, max_attempts, base_delay, timeout
  FROM quantum_flow.define_workflow('order_fulfillment', $${
        "max_attempts": 3, "base_delay": 0, "timeout": 30,
        "steps": [
            {"slug": "validate"},
            {"slug": "charge",  "depends_on": ["validate"]},
            {"slug": "reserve", "depends_on": ["validate"], "type": "map"},
            {"slug": "ship",    "depends_on": ["charge", "reserve"]}
        ]}$$);

SELECT s.step_index AS "#", s.step_slug AS step, s.step_type AS type,
       coalesce(string_agg(d.dep_slug, ', ' ORDER BY d.dep_slug), '')
           AS depends_on,
       CASE s.step_slug
           WHEN 'validate' THEN 'check the order, price its line items'
           WHEN 'charge'   THEN 'charge the card for the total'
           WHEN 'reserve'  THEN 'reserve stock, one task per line item'
           WHEN 'ship'     THEN 'book the shipment'
       END AS does
  FROM quantum_flow.workflow_steps AS s
  LEFT JOIN quantum_flow.workflow_step_deps AS d
         ON d.workflow_slug = s.workflow_slug AND d.step_slug = s.step_slug
 WHERE s.workflow_slug = 'order_fulfillment'
 GROUP BY s.step_index, s.step_slug, s.step_type
 ORDER BY s.step_index;

/* ------------------------------------------------------------------------
 * The orders
 *
 * Order n has 1 to 5 distinct line items; one order in 60 is paid with an
 * expired card, which the payment provider declines on every attempt.
 * ------------------------------------------------------------------------ */

CREATE FUNCTION demo.order_input(n integer)
RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT
AS $$
    WITH h AS (
        SELECT demo.hash('order ' || n) AS v
    ), skus AS (
        SELECT c.sku, row_number() OVER (ORDER BY c.sku) - 1 AS pos
          FROM demo.catalog AS c
    ), items AS (
        SELECT k, s.sku, 1 + (h.v >> (3 * k)) % 3 AS qty
          FROM h,
               generate_series(0, h.v % 5) AS k,
               skus AS s
         WHERE s.pos = (h.v / 5 + 5 * k) % 12
    )
    SELECT jsonb_build_object(
               'order_id', format('ORD-%s', lpad(n::text, 5, '0')),
               'customer', format('cust-%s', lpad((h.v % 97)::text, 3, '0')),
               'payment_method',
                   CASE WHEN n % 60 = 17 THEN 'card_expired'
                        WHEN n % 2 = 0 THEN 'card_visa_4242'
                        ELSE 'card_mc_5454' END,
               'ship_to',
                   (ARRAY['Dublin', 'Amsterdam', 'Berlin', 'Lisbon',
                          'Vienna', 'Oslo'])[1 + h.v % 6],
               'items', (SELECT jsonb_agg(jsonb_build_object('sku', i.sku,
                                                             'qty', i.qty)
                                          ORDER BY i.k)
                           FROM items AS i))
      FROM h
$$;

\echo '== Starting' :runs 'orders with start_run(), keyed by order id'
SELECT count(*) AS runs_started,
       sum(jsonb_array_length(r.input -> 'items')) AS line_items,
       count(*) FILTER (WHERE r.input ->> 'payment_method' = 'card_expired')
           AS with_expired_card
  FROM generate_series(1, :runs) AS n,
       LATERAL quantum_flow.start_run(
           'order_fulfillment',
           demo.order_input(n),
           run_id => md5('demo order ' || n)::uuid,
           idempotency_key => format('ORD-%s', lpad(n::text, 5, '0'))) AS r;

/* A client that retries start_run with the same key gets the same run. */
SELECT r.run_id = md5('demo order 1')::uuid AS same_run_on_retry,
       (SELECT count(*) FROM quantum_flow.workflow_runs) AS runs_in_total
  FROM quantum_flow.start_run('order_fulfillment', demo.order_input(1),
                              idempotency_key => 'ORD-00001') AS r;
