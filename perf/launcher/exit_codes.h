// The exit codes chorusrun itself chooses. Otherwise it exits with the code
// of the first rank that failed (128 + signal for a rank killed by a signal),
// or 0 when every rank exited 0.
#pragma once

namespace chorus {
namespace launcher {

constexpr int kExitLauncherError = 1;  // chorusrun could not do its job (fork, pipe, port)
constexpr int kExitUsage = 2;          // bad options
constexpr int kExitTimeout = 124;      // --timeout passed (as timeout(1))
constexpr int kExitCannotExecute = 126;  // the program exists but cannot be run (as sh)
constexpr int kExitNotFound = 127;       // the program does not exist (as sh)
constexpr int kExitSignalBase = 128;     // + the signal that ended a rank or chorusrun

}  // namespace launcher
}  // namespace chorus
