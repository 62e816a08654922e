
# Copyright (c) 2026, the quantum_flow authors

# Crash recovery under load.
#
# 2,000 runs of a diamond workflow with a map step, started 200 at a time,
# are worked off by eight concurrent workers.  About one execution in ten
# fails on purpose, some workers die right after claiming a task, others
# are terminated by the test, a few executions outlive their lease while
# another worker runs the same task, and part way through the server
# itself is stopped in immediate mode and started again.  The frozen
# clock, moved forward by the test, makes leases expire and retry delays
# pass without sleeping.
#
# Each worker records its effect in a ledger keyed by the task's
# idempotency key, in the same transaction as complete_task.  At the end
# every run must have ended, every task of a completed run must have been
# completed by exactly one execution, whose effect is in the ledger once,
# no task may have used more attempts than allowed, and
# quantum_flow.check_invariants() must find nothing, right after the crash
# as at the end.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use QfLoad;
use Test::More;

my $runs = 2000;

# A cluster with room for the workers, logging only what goes wrong.
my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_connections = 40
log_statement = none
log_min_messages = warning
});
$node->start;

my $load = QfLoad->new(node => $node, workers => 8);
$load->setup;

# Runs are started 200 at a time whenever fewer than 200 are open, so
# that the queue stays short enough for leases that expire to be claimed
# again soon (the queue is served oldest first).
my $started = 0;

sub top_up
{
	my ($progress) = @_;
	return if $started >= $runs || $progress->{open_runs} >= 200;
	my $count = $runs - $started < 200 ? $runs - $started : 200;
	$load->start_runs($count);
	$started += $count;
	return;
}

# Work until about 40% of the expected reports are in, then crash.
$load->start_workers;
ok( $load->drive(
		until => sub {
			my $p = $load->progress;
			top_up($p);
			return $p->{reports} >= 1.8 * $runs;
		},
		timeout => 120),
	'workers made progress before the crash');
$load->crash;

# Recovery leaves consistent data, with runs still to finish.
is($load->invariants, '', 'no invariant is broken right after the crash');
cmp_ok($load->progress->{open_runs}, '>', 0,
	'the crash hit in the middle of the load');

# Let the workers start the remaining runs and finish everything.
ok( $load->drive(
		until => sub {
			my $p = $load->progress;
			top_up($p);
			return $started == $runs && $p->{open_runs} == 0;
		},
		timeout => 150),
	"all $runs runs were started and ended");
$load->stop_workers;

my %r = $load->results;
note sprintf("%-42s %s", 'seconds', time - $^T);
note sprintf("%-42s %s", $_, $r{$_}) for sort keys %r;
diag "unexpected worker output: $_" for $load->errors;

# What must never happen.
for my $fault (sort grep { /^fault: / } keys %r)
{
	is($r{$fault}, 0, $fault =~ s/^fault: /no /r);
}
is($load->invariants, '', 'no invariant is broken at the end');

# The faults the test injects did happen, so the checks above mean
# something.
cmp_ok($r{'runs completed'} // 0, '>', $runs / 2, 'most runs completed');
cmp_ok($r{'injected failures'}, '>', 0, 'failures were injected');
cmp_ok($r{'abandoned attempts'}, '>', 0,
	'attempts were abandoned by dead workers and reclaimed');
cmp_ok($r{'redelivered effects absorbed'}, '>', 0,
	'redelivered tasks found their effect already in the ledger');
cmp_ok($r{'worker kills'} + $r{'worker deaths'}, '>', 0,
	'workers were killed');
is($r{'server crashes'}, 1, 'the server crashed once');
is($r{runs}, $runs, "$runs runs in all");

$node->stop;
done_testing();
