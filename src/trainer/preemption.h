// Preemption: SIGUSR1 (Slurm's --signal) or SIGTERM asks the run to stop
// after the current step, write last.pt and exit with kExitResumable, so the
// job script can requeue it and `--resume auto` continue where it stopped.
#pragma once

namespace da::trainer {

// EX_TEMPFAIL: stopped early on request; resumable.
constexpr int kExitResumable = 75;

// Installs the handlers (idempotent). Only sets a flag: the trainer polls it.
void install_preemption_handlers();
bool preemption_requested();
// For tests: request (as a signal would) or clear.
void set_preemption_requested(bool requested);

}  // namespace da::trainer
