// A stand-in rank for chorusrun's tests: prints the launcher's environment,
// then does what its arguments tell the rank it runs as.
//
//   chorusrun_probe [actions...]
//     --marker TEXT       ignored; lets a test find leftover probes with pgrep -f
//     --show NAME         print NAME too, after the launcher's variables
//     --stderr            print a line on stderr as well
//     --partial           end stdout with a line that has no newline
//     --ignore-term R     ignore SIGTERM (set before anything is printed)
//     --sleep R:SECONDS   sleep
//     --exit R:CODE       exit with CODE
//     --crash R:segv|abort  die by SIGSEGV or SIGABRT
// R is a rank or "all"; actions run in the order given, after printing.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

const char* env(const char* name) {
  const char* value = getenv(name);
  return value != nullptr ? value : "<unset>";
}

// "R:rest" for this rank? Sets *rest to what follows the colon.
bool forMe(const std::string& arg, int rank, std::string* rest) {
  size_t colon = arg.find(':');
  std::string who = arg.substr(0, colon);
  *rest = colon == std::string::npos ? "" : arg.substr(colon + 1);
  return who == "all" || (!who.empty() && who == std::to_string(rank));
}

void sleepSeconds(double seconds) {
  timespec left{static_cast<time_t>(seconds),
                static_cast<long>((seconds - static_cast<time_t>(seconds)) * 1e9)};
  while (nanosleep(&left, &left) != 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  int rank = atoi(env("RANK"));
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string rest;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--ignore-term" && forMe(args[i + 1], rank, &rest)) signal(SIGTERM, SIG_IGN);

  std::string line = "env";
  std::vector<std::string> names = {"RANK",        "WORLD_SIZE",  "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                    "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK"};
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--show") names.push_back(args[i + 1]);
  for (const std::string& name : names) line += " " + name + "=" + env(name.c_str());
  printf("%s\nsecond line of rank %d\n", line.c_str(), rank);
  for (const std::string& arg : args) {
    if (arg == "--stderr") fprintf(stderr, "err line of rank %d\n", rank);
    if (arg == "--partial") printf("partial line of rank %d", rank);
  }
  fflush(stdout);

  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (!forMe(args[i + 1], rank, &rest)) continue;
    if (args[i] == "--sleep") {
      sleepSeconds(atof(rest.c_str()));
    } else if (args[i] == "--exit") {
      return atoi(rest.c_str());
    } else if (args[i] == "--crash") {
      if (rest == "abort") abort();
      signal(SIGSEGV, SIG_DFL);
      raise(SIGSEGV);
    }
  }
  return 0;
}
