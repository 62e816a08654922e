
# Copyright (c) 2026, the quantum_flow authors

=pod

=head1 NAME

QfLoad - drive concurrent workers, worker deaths and server crashes
against a quantum_flow cluster

=head1 SYNOPSIS

  my $load = QfLoad->new(node => $node, workers => 8);
  $load->setup;
  $load->start_runs(2000);
  $load->start_workers;
  $load->drive(until => sub { $load->progress->{reports} >= 3000 });
  $load->crash;
  $load->drive(until => sub { $load->progress->{open_runs} == 0 });
  $load->stop_workers;
  my %results = $load->results;

=head1 DESCRIPTION

Shared by the crash recovery TAP test (test/t/001_crash_recovery.pl) and
the soak run (test/soak.pl).  The SQL side, the workflow, the ledger and the
worker procedure, is in qf_load.sql next to this file.

Each worker is a psql process running one shift of C<CALL qf_load.work(...)>:
it claims, executes and reports tasks one at a time, committing each step,
and returns after a fixed number of tasks or at the first empty poll.  The
driver starts a new shift in every free worker slot, so that there are
always as many workers as asked for while the server is up.

The clock is frozen at the database level with C<ALTER DATABASE ... SET
quantum_flow.clock_override>, and every tick of the driver moves it forward.
A shift reads the clock when it connects, so that time moves for every
worker without any worker sleeping: leases of dead workers expire and retry
delays pass in a few ticks.

Worker failures come in three kinds: a worker ends its own session right
after a claim (C<die_rate>), the driver terminates a random worker's
backend (C<kill_every> ticks), and C<crash> stops the server in immediate
mode, which kills every worker at once, then starts it again.  Anything a
worker prints that is not one of these expected deaths is kept in
C<errors> and counts as a fault.  Besides, a few executions outlive their
lease (C<slow_rate>), so that two workers run the same task at once.

The load is kept short enough for an expired lease to be claimed again
soon, since the queue is served oldest first: the caller starts runs in
small batches as others end, rather than all at once.

=cut

package QfLoad;

use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use POSIX qw(strftime);
use Time::HiRes qw(usleep);

use PostgreSQL::Test::Utils;

# How a worker may legitimately end, besides finishing its shift: its
# backend terminated, or the server stopping, crashing or starting.
my $expected_death = qr/
	terminating\ connection\ due\ to\ administrator\ command
  | terminating\ connection\ due\ to\ immediate\ shutdown
  | server\ closed\ the\ connection\ unexpectedly
  | connection\ to\ server\ was\ lost
  | no\ connection\ to\ the\ server
  | connection\ to\ server\ on\ socket .* failed
  | the\ database\ system\ is\ (?:starting\ up|shutting\ down|in\ recovery)
/x;

=pod

=head1 METHODS

=over

=item QfLoad->new(node => $node, %options)

Options, with their defaults: C<workers> (8), C<shift_tasks> (50),
C<fail_rate> (0.1), C<die_rate> (0.005), C<slow_rate> (0.05) and
C<slow_secs> (20) for executions that outlive their lease, C<tick_ms>
(100) between ticks, C<clock_step> (1 second of frozen time per tick),
C<kill_every> (10 ticks between terminations of a random worker; 0 for
none).

=cut

sub new
{
	my ($class, %options) = @_;
	my $self = {
		workers     => 8,
		shift_tasks => 50,
		fail_rate   => 0.1,
		die_rate    => 0.005,
		slow_rate   => 0.05,
		slow_secs   => 20,
		tick_ms     => 100,
		clock_step  => 1,
		kill_every  => 10,
		%options,
		clock       => 1735689600,    # 2025-01-01 00:00:00+00
		ticks       => 0,
		slots       => [],
		running     => 0,
		kills       => 0,
		crashes     => 0,
		shifts      => 0,
		deaths      => 0,
		errors      => [],
	};
	die "QfLoad->new needs a node" unless $self->{node};
	return bless $self, $class;
}

=pod

=item $load->setup()

Create the extension and the scenario's objects, and freeze the clock.

=cut

sub setup
{
	my ($self) = @_;
	my $node = $self->{node};

	$node->safe_psql('postgres', 'CREATE EXTENSION quantum_flow');
	$node->safe_psql('postgres',
		PostgreSQL::Test::Utils::slurp_file(dirname(__FILE__) . '/qf_load.sql'));
	$self->_set_clock;
	return;
}

=pod

=item $load->start_runs($count)

Start $count runs of the workflow, in batches of 500.

=cut

sub start_runs
{
	my ($self, $count) = @_;

	while ($count > 0)
	{
		my $batch = $count > 500 ? 500 : $count;
		$self->{node}
		  ->safe_psql('postgres', "SELECT qf_load.start_runs($batch)");
		$count -= $batch;
	}
	return;
}

=pod

=item $load->start_workers()

Keep C<workers> shifts running from now on; C<tend> starts them.

=cut

sub start_workers
{
	my ($self) = @_;

	$self->{running} = 1;
	$self->tend;
	return;
}

=pod

=item $load->stop_workers()

Start no more shifts, and wait for the running ones to end.

=cut

sub stop_workers
{
	my ($self) = @_;

	$self->{running} = 0;
	$self->_wait_workers;
	return;
}

=pod

=item $load->tend()

Reap the shifts that ended, keep what they printed if it is not an
expected death, and start new ones in the free slots.

=cut

sub tend
{
	my ($self) = @_;

	for my $i (0 .. $self->{workers} - 1)
	{
		my $slot = $self->{slots}[$i];

		# Reap a shift that ended.
		if ($slot && $slot->{h})
		{
			$slot->{h}->pump_nb;
			next if $slot->{h}->pumpable;
			$slot->{h}->finish;
			$self->_judge($i, $slot);
			$slot->{h} = undef;
		}

		# Start a new one.
		$self->_start_shift($i) if $self->{running};
	}
	return;
}

=pod

=item $load->tick()

Move the frozen clock forward by C<clock_step> seconds and, every
C<kill_every> ticks, terminate the backend of a random worker.

=cut

sub tick
{
	my ($self) = @_;

	$self->{ticks}++;
	$self->{clock} += $self->{clock_step};
	$self->_set_clock;

	if ($self->{kill_every} && $self->{ticks} % $self->{kill_every} == 0)
	{
		$self->{kills} += $self->{node}->safe_psql(
			'postgres', q{
			SELECT count(pg_terminate_backend(pid))
			  FROM (SELECT pid FROM pg_stat_activity
			         WHERE application_name = 'qf_worker'
			         ORDER BY random() LIMIT 1) AS victim});
	}
	return;
}

=pod

=item $load->drive(until => $coderef, timeout => $seconds)

Tend, tick and sleep C<tick_ms>, until $coderef returns true.  Returns
true then, false when C<timeout> (default 600) seconds passed first.

=cut

sub drive
{
	my ($self, %args) = @_;
	my $deadline = time + ($args{timeout} // 600);

	while (1)
	{
		$self->tend;
		return 1 if $args{until}->();
		return 0 if time > $deadline;
		$self->tick;
		usleep($self->{tick_ms} * 1000);
	}
}

=pod

=item $load->crash()

Stop the server in immediate mode in the middle of the load, wait for
every worker to notice, and start the server again.  Workers resume at
the next C<tend>.

=cut

sub crash
{
	my ($self) = @_;
	my $running = $self->{running};

	$self->{node}->stop('immediate');
	$self->{crashes}++;

	# Every shift loses its connection; start none while the server is down.
	$self->{running} = 0;
	$self->_wait_workers;
	$self->{node}->start;
	$self->{running} = $running;
	return;
}

=pod

=item $load->progress()

Open runs and reports so far, as a hash reference.

=cut

sub progress
{
	my ($self) = @_;
	my ($open, $reports) = split /\|/,
	  $self->{node}->safe_psql(
		'postgres', q{
		SELECT (SELECT count(*) FROM quantum_flow.workflow_runs
		         WHERE status = 'started'),
		       (SELECT count(*) FROM qf_load.executions)});

	return { open_runs => $open, reports => $reports };
}

=pod

=item $load->invariants()

What quantum_flow.check_invariants() reports, one line per finding; empty
when the data is consistent.  Reads in a REPEATABLE READ transaction, so
that it sees one snapshot even while workers run.

=cut

sub invariants
{
	my ($self) = @_;

	return $self->{node}->safe_psql(
		'postgres', q{
		BEGIN ISOLATION LEVEL REPEATABLE READ;
		SELECT invariant || ': ' || detail
		  FROM quantum_flow.check_invariants()
		 ORDER BY 1;
		COMMIT;});
}

=pod

=item $load->results()

The scenario's counters: those of qf_load.results(), and the driver's own
(worker kills, crashes, shifts, expected deaths, and unexpected worker
errors, a fault).

=cut

sub results
{
	my ($self) = @_;
	my %results = (
		'worker kills'                    => $self->{kills},
		'server crashes'                  => $self->{crashes},
		'worker shifts'                   => $self->{shifts},
		'worker deaths'                   => $self->{deaths},
		'fault: unexpected worker errors' => scalar @{ $self->{errors} },
	);

	for my $line (
		split /\n/,
		$self->{node}->safe_psql(
			'postgres', 'SELECT counter, value FROM qf_load.results()'))
	{
		my ($counter, $value) = split /\|/, $line;
		$results{$counter} = $value;
	}
	return %results;
}

=pod

=item $load->errors()

The unexpected output of workers, one string per shift.

=cut

sub errors
{
	my ($self) = @_;
	return @{ $self->{errors} };
}

=pod

=back

=cut

# Freeze the clock of new sessions at the driver's current time.
sub _set_clock
{
	my ($self) = @_;
	my $at = strftime('%Y-%m-%d %H:%M:%S+00', gmtime($self->{clock}));

	$self->{node}->safe_psql('postgres',
		"ALTER DATABASE postgres SET quantum_flow.clock_override = '$at'");
	return;
}

# Start a shift in slot $i.
sub _start_shift
{
	my ($self, $i) = @_;
	my $slot = $self->{slots}[$i] //= {};
	my $call = sprintf("CALL qf_load.work('w%d', %d, %s, %s, %s, %s)",
		$i, $self->{shift_tasks}, $self->{fail_rate}, $self->{die_rate},
		$self->{slow_rate}, $self->{slow_secs});

	$slot->{out} = '';
	$slot->{err} = '';
	$slot->{h}   = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-d', $self->{node}->connstr('postgres')
			  . ' application_name=qf_worker',
			'-c', $call
		],
		'<', \undef, '>', \$slot->{out}, '2>', \$slot->{err});
	$self->{shifts}++;
	return;
}

# Sort an ended shift: finished, died as expected, or failed.
sub _judge
{
	my ($self, $i, $slot) = @_;
	my $status = $slot->{h}->full_result;

	return if $status == 0 && $slot->{err} eq '';
	if ($status != 0 && $slot->{err} =~ $expected_death)
	{
		$self->{deaths}++;
		return;
	}
	push @{ $self->{errors} },
	  sprintf("worker w%d exited with status %d: %s", $i, $status >> 8,
		$slot->{err});
	return;
}

# Wait for every running shift to end, reaping it.
sub _wait_workers
{
	my ($self) = @_;

	while (grep { $_ && $_->{h} } @{ $self->{slots} })
	{
		$self->tend;
		usleep(20_000);
	}
	return;
}

1;
