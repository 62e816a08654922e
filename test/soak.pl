
# Copyright (c) 2026, the quantum_flow authors

# The soak run: the crash recovery scenario of test/t/001_crash_recovery.pl
# for SOAK_MINUTES minutes (default 10), with a server crash about every
# minute.  New runs are started as old ones end: SOAK_OPEN more (default
# 200) whenever fewer than that are open.  At the end the workers finish
# what is open and the counters are printed: runs, tasks, lost and
# duplicated effects, and the other faults, which must all be 0.
#
# Run it through test/soak.sh (`make soak`), which builds, installs and
# sets up the environment that PostgreSQL::Test::Cluster needs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/t";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use QfLoad;
use Test::More;

my $minutes = $ENV{SOAK_MINUTES} // 10;
my $open    = $ENV{SOAK_OPEN}    // 200;
my $end     = time + 60 * $minutes;

my $node = PostgreSQL::Test::Cluster->new('soak');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_connections = 40
log_statement = none
log_min_messages = warning
autovacuum_naptime = 10s
});
$node->start;

my $load = QfLoad->new(node => $node, workers => 8);
$load->setup;
$load->start_workers;

note sprintf(
	"soak: %d minutes, %d to %d open runs, a crash about every minute",
	$minutes, $open, 2 * $open);

# Rounds of about a minute, each ending in a crash.
my $round = 0;
while (time < $end)
{
	my $crash_at = time + 45 + int(rand(30));

	$crash_at = $end if $crash_at > $end;
	$load->drive(
		until => sub {
			my $p = $load->progress;

			# Top the load up as runs end.
			$load->start_runs($open) if $p->{open_runs} < $open;
			return time >= $crash_at;
		});
	last if time >= $end;

	$load->crash;
	$round++;
	my $broken = $load->invariants;
	is($broken, '', "no invariant is broken after crash $round");
	my $p = $load->progress;
	note sprintf("soak: crash %d after %d reports, %d runs open", $round,
		$p->{reports}, $p->{open_runs});
}

# Finish what is open.
ok( $load->drive(
		until => sub { $load->progress->{open_runs} == 0 },
		timeout => 600),
	'every run ended');
$load->stop_workers;

# Report.
my %r = $load->results;
note sprintf("soak: %-42s %s", $_, $r{$_}) for sort keys %r;
diag "soak: unexpected worker output: $_" for $load->errors;
for my $fault (sort grep { /^fault: / } keys %r)
{
	is($r{$fault}, 0, $fault =~ s/^fault: /no /r);
}
is($load->invariants, '', 'no invariant is broken at the end');

$node->stop;
done_testing();
