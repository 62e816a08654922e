/*-------------------------------------------------------------------------
 *
 * worker.sql
 *		The demo's worker, in nothing but SQL: demo.execute() does the work
 *		of one task, and the procedure demo.work() is the worker loop that
 *		several sessions run at once.
 *
 * The loop is the one a worker in any language would run:
 *   1. poll_tasks claims a batch, and the claim is committed at once, so
 *      that the lease, not an open transaction, is what keeps other
 *      workers away while the batch executes (a poll left open would
 *      hold task row locks that a run failing elsewhere must take after
 *      its run lock, the reverse of the engine's lock order);
 *   2. each task executes; the payment provider and the warehouse are
 *      called with the task's idempotency key;
 *   3. complete_tasks reports the successes in one call, and commits;
 *   4. fail_task reports each failure, and commits.
 * Each of the transactions in 3 and 4 locks runs in run_id order, which is
 * what keeps concurrent workers free of deadlocks.
 *
 * Failures are deterministic, drawn from the idempotency key and the
 * attempt number: a charge attempt meets a gateway timeout 15% of the
 * time, and an expired card is declined on every attempt.
 *
 * IDENTIFICATION
 *		test/demo/worker.sql
 *
 *-------------------------------------------------------------------------
 */

SET client_min_messages = warning;

/*
 * demo.execute
 *		Execute one claimed task: ok and its output, or not ok and an
 *		error message.  The outside systems it calls are tables here.
 */
CREATE FUNCTION demo.execute(task quantum_flow.claimed_task,
                             OUT ok boolean, OUT output jsonb,
                             OUT error text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_key   text := task.idempotency_key;
    v_total numeric;
BEGIN
    ok := true;

    CASE task.step_slug

    /* validate: the order's line items, priced from the catalog. */
    WHEN 'validate' THEN
        SELECT jsonb_agg(jsonb_build_object(
                   'sku', c.sku, 'name', c.name,
                   'qty', (i.item ->> 'qty')::integer,
                   'unit_price', c.price,
                   'amount', c.price * (i.item ->> 'qty')::integer,
                   'warehouse', c.warehouse)
                   ORDER BY i.ord)
          INTO output
          FROM jsonb_array_elements(task.input -> 'items')
               WITH ORDINALITY AS i(item, ord)
          JOIN demo.catalog AS c ON c.sku = i.item ->> 'sku';

    /* charge: the total, plus shipping under 50.00, from the card. */
    WHEN 'charge' THEN
        SELECT sum((i ->> 'amount')::numeric)
          INTO v_total
          FROM jsonb_array_elements(task.input -> 'validate') AS i;
        v_total := v_total + CASE WHEN v_total < 50 THEN 4.90 ELSE 0 END;

        IF task.run_input ->> 'payment_method' = 'card_expired' THEN
            ok := false;
            error := 'card declined: expired card';
        ELSIF demo.hash(v_key || ':' || task.attempt) % 100 < 15 THEN
            ok := false;
            error := 'payment gateway timeout';
        ELSE
            INSERT INTO demo.payments AS p (idempotency_key, payment_id,
                                            order_id, amount)
            VALUES (v_key, 'pay_' || left(md5('pay' || v_key), 14),
                    task.run_input ->> 'order_id', v_total)
            ON CONFLICT (idempotency_key)
            DO UPDATE SET requests = p.requests + 1;
            output := jsonb_build_object(
                'payment_id', 'pay_' || left(md5('pay' || v_key), 14),
                'amount', v_total, 'currency', 'EUR',
                'method', task.run_input ->> 'payment_method');
        END IF;

    /* reserve: one line item's stock in its warehouse. */
    WHEN 'reserve' THEN
        INSERT INTO demo.reservations AS r (idempotency_key, reservation_id,
                                            sku, qty)
        VALUES (v_key, 'res_' || left(md5('res' || v_key), 10),
                task.input ->> 'sku', (task.input ->> 'qty')::integer)
        ON CONFLICT (idempotency_key)
        DO UPDATE SET requests = r.requests + 1;
        output := jsonb_build_object(
            'reservation_id', 'res_' || left(md5('res' || v_key), 10),
            'sku', task.input ->> 'sku',
            'qty', (task.input ->> 'qty')::integer,
            'warehouse', task.input ->> 'warehouse');

    /* ship: one parcel per warehouse, to the order's city. */
    WHEN 'ship' THEN
        SELECT jsonb_build_object(
                   'shipment_id', 'shp_' || left(md5('shp' || v_key), 10),
                   'carrier', (ARRAY['DHL', 'UPS', 'PostNL'])
                                  [1 + demo.hash(v_key) % 3],
                   'ship_to', task.run_input ->> 'ship_to',
                   'parcels', count(DISTINCT r ->> 'warehouse'),
                   'items', sum((r ->> 'qty')::integer),
                   'paid', task.input -> 'charge' -> 'amount',
                   'payment_id', task.input -> 'charge' -> 'payment_id',
                   'reservations', jsonb_agg(r -> 'reservation_id'))
          INTO output
          FROM jsonb_array_elements(task.input -> 'reserve') AS r;

    ELSE
        ok := false;
        error := format('no handler for step "%s"', task.step_slug);
    END CASE;
END
$$;

/*
 * demo.work
 *		The worker loop.  Runs until no run of the workflow is left
 *		started; raises an error if that takes longer than time_limit.
 */
CREATE PROCEDURE demo.work(worker_id text,
                           batch_size integer DEFAULT 20,
                           time_limit interval DEFAULT '100 seconds')
LANGUAGE plpgsql
AS $$
DECLARE
    v_deadline  timestamptz := clock_timestamp() + time_limit;
    v_batch     quantum_flow.claimed_task[];
    v_task      quantum_flow.claimed_task;
    v_result    record;
    v_run_ids   uuid[];
    v_steps     text[];
    v_indexes   integer[];
    v_outputs   jsonb[];
    v_attempts  integer[];
    v_failed    quantum_flow.claimed_task[];
    v_errors    text[];
    i           integer;
BEGIN
    LOOP
        /* 1. Claim a batch, and let go of its row locks. */
        SELECT array_agg(t ORDER BY t.run_id, t.step_slug, t.task_index)
          INTO v_batch
          FROM quantum_flow.poll_tasks('order_fulfillment', worker_id,
                                       batch_size) AS t;
        COMMIT;

        IF v_batch IS NULL THEN
            EXIT WHEN NOT EXISTS (
                SELECT 1 FROM quantum_flow.workflow_runs AS r
                 WHERE r.workflow_slug = 'order_fulfillment'
                   AND r.status = 'started');
            IF clock_timestamp() > v_deadline THEN
                RAISE EXCEPTION 'worker % gave up after %', worker_id,
                                time_limit;
            END IF;
            /* Other workers hold the remaining tasks: wait a little. */
            PERFORM pg_sleep(0.01);
            COMMIT;
            CONTINUE;
        END IF;

        /* 2. Execute, in run_id order. */
        v_run_ids := '{}';
        v_steps := '{}';
        v_indexes := '{}';
        v_outputs := '{}';
        v_attempts := '{}';
        v_failed := '{}';
        v_errors := '{}';
        FOREACH v_task IN ARRAY v_batch LOOP
            v_result := demo.execute(v_task);
            INSERT INTO demo.attempts (idempotency_key, step_slug, attempt,
                                       worker_id, succeeded, error)
            VALUES (v_task.idempotency_key, v_task.step_slug, v_task.attempt,
                    worker_id, v_result.ok, v_result.error);
            IF v_result.ok THEN
                v_run_ids := v_run_ids || v_task.run_id;
                v_steps := v_steps || v_task.step_slug;
                v_indexes := v_indexes || v_task.task_index;
                v_outputs := v_outputs || v_result.output;
                v_attempts := v_attempts || v_task.attempt;
            ELSE
                v_failed := v_failed || v_task;
                v_errors := v_errors || v_result.error;
            END IF;
        END LOOP;

        /* 3. The successes, in one call. */
        PERFORM quantum_flow.complete_tasks(v_run_ids, v_steps, v_indexes,
                                            v_outputs, v_attempts);
        COMMIT;

        /* 4. The failures: retried, or the end of their run. */
        FOR i IN 1 .. cardinality(v_failed) LOOP
            PERFORM quantum_flow.fail_task(v_failed[i].run_id,
                                           v_failed[i].step_slug,
                                           v_failed[i].task_index,
                                           v_errors[i],
                                           v_failed[i].attempt);
        END LOOP;
        COMMIT;
    END LOOP;
END
$$;
