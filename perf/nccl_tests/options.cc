#include "options.h"

#include <getopt.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "perf_types.h"

namespace perf {

namespace {

struct ReductionName {
  const char* name;
  Reduction reduction;
};
const ReductionName kReductions[] = {
    {"sum", Reduction::Sum},  {"prod", Reduction::Prod}, {"max", Reduction::Max},
    {"min", Reduction::Min},  {"avg", Reduction::Avg},   {"mulsum", Reduction::PreMulSum},
    {"premulsum", Reduction::PreMulSum},
};

void usage(FILE* out, const char* program) {
  fprintf(out,
          "USAGE: %s\n"
          "  -t,--nthreads <threads per process>          default 1\n"
          "  -g,--ngpus <communicators per thread>        default 1\n"
          "  -b,--minbytes <min size in bytes, K/M/G>     default 32M\n"
          "  -e,--maxbytes <max size in bytes, K/M/G>     default 32M\n"
          "  -i,--stepbytes <increment in bytes>          default 1M\n"
          "  -f,--stepfactor <multiplication factor>      default: off (use -i)\n"
          "  -n,--iters <timed iterations>                default 20\n"
          "  -w,--warmup_iters <warmup iterations>        default 5\n"
          "  -m,--agg_iters <operations per group>        default 1\n"
          "  -N,--run_cycles <sweeps, 0 = forever>        default 1\n"
          "  -c,--check <iterations checked, 0 = none>    default 1\n"
          "  -o,--op <sum/prod/max/min/avg/premulsum/all> default sum (or a comma list)\n"
          "  -d,--datatype <%s> default float (or a comma list)\n"
          "  -r,--root <rank/all>                         default 0\n"
          "  -z,--blocking <0/1: sync and barrier after each operation> default 0\n"
          "  -a,--average <0 rank 0, 1 avg, 2 min, 3 max>  default 1\n"
          "  -T,--timeout <seconds per operation, 0 = none> default 0\n"
          "  -R,--local_register <0/1: ncclCommRegister the buffers> default 0\n"
          "  -J,--output_file <JSON file for the results>\n"
          "  -h,--help\n",
          program, typeNamesHelp().c_str());
}

bool parseLong(const char* text, long min, long max, long* value) {
  if (text == nullptr || *text == '\0') return false;
  errno = 0;
  char* end = nullptr;
  long v = strtol(text, &end, 0);
  if (errno != 0 || *end != '\0' || v < min || v > max) return false;
  *value = v;
  return true;
}

// The option getopt complains about: "-x" for a short one, else the word as given.
std::string optionText(int shortOption, const char* word) {
  // A long option as it was typed (without "=value").
  if (word != nullptr && strncmp(word, "--", 2) == 0) {
    const std::string text(word);
    return text.substr(0, text.find('='));
  }
  if (shortOption > 0 && shortOption < 128) return std::string("-") + static_cast<char>(shortOption);
  return word != nullptr ? word : "?";
}

// Prints the problem and the usage; the caller exits 1.
int bad(const char* program, const char* option, const char* value, const char* what) {
  fprintf(stderr, "%s: invalid value '%s' for %s: %s\n", program, value ? value : "", option,
          what);
  fprintf(stderr, "Run '%s -h' for the list of options.\n", program);
  return 1;
}

// "sum", "prod,max" (a comma-separated list, a Chorus extension) or "all".
bool parseReductions(const char* text, std::vector<Reduction>* ops) {
  ops->clear();
  if (strcmp(text, "all") == 0) {
    *ops = {Reduction::Sum, Reduction::Prod, Reduction::Max, Reduction::Min, Reduction::Avg,
            Reduction::PreMulSum};
    return true;
  }
  const std::string list = text;
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t end = std::min(list.find(',', begin), list.size());
    const std::string name = list.substr(begin, end - begin);
    bool found = false;
    for (const ReductionName& n : kReductions)
      if (name == n.name) {
        ops->push_back(n.reduction);
        found = true;
        break;
      }
    if (!found) return false;
    begin = end + 1;
  }
  return !ops->empty();
}

}  // namespace

const char* reductionName(Reduction r) {
  for (const ReductionName& n : kReductions)
    if (n.reduction == r) return n.name;
  return "?";
}

bool parseSize(const char* text, size_t* bytes) {
  if (text == nullptr || *text == '\0') return false;
  errno = 0;
  char* end = nullptr;
  double value = strtod(text, &end);
  if (errno != 0 || end == text || !std::isfinite(value) || value < 0) return false;
  double unit = 1;
  if (*end != '\0') {
    switch (*end) {
      case 'k': case 'K': unit = 1024.0; break;
      case 'm': case 'M': unit = 1024.0 * 1024; break;
      case 'g': case 'G': unit = 1024.0 * 1024 * 1024; break;
      default: return false;
    }
    ++end;
    if (*end == 'B' || *end == 'b') ++end;  // "64KB" reads as 64K
    if (*end != '\0') return false;
  }
  const double total = value * unit;
  if (total > 0x1p40 || total != std::floor(total)) return false;  // whole bytes, at most 1 TiB
  *bytes = static_cast<size_t>(total);
  return true;
}

int parseOptions(int argc, char** argv, Options* o) {
  const char* program = argc > 0 ? argv[0] : "perf";
  if (const char* slash = strrchr(program, '/')) program = slash + 1;
  for (int i = 0; i < argc; ++i) o->argv.push_back(argv[i]);
  static const option longOptions[] = {
      {"nthreads", required_argument, nullptr, 't'},  {"ngpus", required_argument, nullptr, 'g'},
      {"minbytes", required_argument, nullptr, 'b'},  {"maxbytes", required_argument, nullptr, 'e'},
      {"stepbytes", required_argument, nullptr, 'i'}, {"stepfactor", required_argument, nullptr, 'f'},
      {"iters", required_argument, nullptr, 'n'},     {"agg_iters", required_argument, nullptr, 'm'},
      {"warmup_iters", required_argument, nullptr, 'w'},
      {"run_cycles", required_argument, nullptr, 'N'},
      {"check", required_argument, nullptr, 'c'},     {"op", required_argument, nullptr, 'o'},
      {"datatype", required_argument, nullptr, 'd'},  {"root", required_argument, nullptr, 'r'},
      {"blocking", required_argument, nullptr, 'z'},  {"average", required_argument, nullptr, 'a'},
      {"timeout", required_argument, nullptr, 'T'},   {"output_file", required_argument, nullptr, 'J'},
      {"local_register", required_argument, nullptr, 'R'},
      {"help", no_argument, nullptr, 'h'},            {nullptr, 0, nullptr, 0}};
  opterr = 0;  // we print our own messages
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":t:g:b:e:i:f:n:m:w:N:c:o:d:r:z:a:T:R:J:h", longOptions,
                          nullptr)) != -1) {
    long v = 0;
    const char* arg = optarg;
    switch (c) {
      case 't':
        if (!parseLong(arg, 1, 1024, &v)) return bad(program, "-t", arg, "need 1..1024 threads");
        o->nThreads = static_cast<int>(v);
        break;
      case 'g':
        if (!parseLong(arg, 1, 1024, &v)) return bad(program, "-g", arg, "need 1..1024 devices");
        o->nGpus = static_cast<int>(v);
        break;
      case 'b':
        if (!parseSize(arg, &o->minBytes)) return bad(program, "-b", arg, "need a size like 8, 64K, 1M");
        break;
      case 'e':
        if (!parseSize(arg, &o->maxBytes)) return bad(program, "-e", arg, "need a size like 8, 64K, 1M");
        break;
      case 'i':
        // 0 is refused below unless -f makes the steps.
        if (!parseSize(arg, &o->stepBytes)) return bad(program, "-i", arg, "need a positive size");
        break;
      case 'f':
        if (!parseLong(arg, 1, 1 << 20, &v)) return bad(program, "-f", arg, "need an integer factor >= 1");
        o->stepFactor = static_cast<size_t>(v);
        break;
      case 'n':
        if (!parseLong(arg, 1, 1L << 30, &v)) return bad(program, "-n", arg, "need at least 1 iteration");
        o->iters = static_cast<int>(v);
        break;
      case 'w':
        if (!parseLong(arg, 0, 1L << 30, &v)) return bad(program, "-w", arg, "need 0 or more iterations");
        o->warmupIters = static_cast<int>(v);
        break;
      case 'm':
        if (!parseLong(arg, 1, 1L << 20, &v)) return bad(program, "-m", arg, "need at least 1");
        o->aggIters = static_cast<int>(v);
        break;
      case 'N':
        if (!parseLong(arg, 0, 1L << 30, &v)) return bad(program, "-N", arg, "need 0 (forever) or more");
        o->runCycles = static_cast<int>(v);
        break;
      case 'c':
        if (!parseLong(arg, 0, 1L << 20, &v))
          return bad(program, "-c", arg, "need a number of iterations to check, 0 for none");
        o->checkIters = static_cast<int>(v);
        break;
      case 'o':
        if (!parseReductions(arg, &o->ops))
          return bad(program, "-o", arg, "need sum/prod/max/min/avg/premulsum, a comma list, or all");
        break;
      case 'd':
        if (!parseTypes(arg, &o->types))
          return bad(program, "-d", arg, ("need one of " + typeNamesHelp()).c_str());
        break;
      case 'r':
        if (strcmp(arg, "all") == 0 || strcmp(arg, "-1") == 0) {
          o->root = -1;
        } else {
          if (!parseLong(arg, 0, 1L << 30, &v)) return bad(program, "-r", arg, "need a rank or 'all'");
          o->root = static_cast<int>(v);
        }
        break;
      case 'z':
        if (!parseLong(arg, 0, 1, &v)) return bad(program, "-z", arg, "need 0 or 1");
        o->blocking = v != 0;
        break;
      case 'a':
        if (!parseLong(arg, 0, 3, &v)) return bad(program, "-a", arg, "need 0, 1, 2 or 3");
        o->average = static_cast<int>(v);
        break;
      case 'T':
        if (!parseLong(arg, 0, 1L << 30, &v)) return bad(program, "-T", arg, "need seconds >= 0");
        o->timeoutSec = static_cast<int>(v);
        break;
      case 'R':
        if (!parseLong(arg, 0, 2, &v)) return bad(program, "-R", arg, "need 0 or 1");
        if (v == 2) return bad(program, "-R", arg, "symmetric (window) registration is not built; use 1");
        o->localRegister = v == 1;
        break;
      case 'J':
        if (arg == nullptr || *arg == '\0') return bad(program, "-J", arg, "need a file name");
        o->jsonPath = arg;
        break;
      case 'h':
        usage(stdout, program);
        return 0;
      case ':':
        fprintf(stderr, "%s: option '%s' needs a value\n", program, optionText(optopt, argv[optind - 1]).c_str());
        usage(stderr, program);
        return 1;
      default:
        // getopt leaves optind on a cluster of short options ("-qz"): the
        // word names the option only for an unknown long one (optopt 0).
        fprintf(stderr, "%s: unknown option '%s'\n", program,
                optionText(optopt, optopt == 0 ? argv[optind - 1] : nullptr).c_str());
        usage(stderr, program);
        return 1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", program, argv[optind]);
    usage(stderr, program);
    return 1;
  }
  if (o->stepFactor <= 1 && o->stepBytes == 0) {
    fprintf(stderr, "%s: -i is 0 bytes: need a positive step (or -f)\n", program);
    return 1;
  }
  if (o->minBytes > o->maxBytes) {
    fprintf(stderr, "%s: invalid sizes: minbytes %zu > maxbytes %zu\n", program, o->minBytes,
            o->maxBytes);
    return 1;
  }
  return -1;
}

}  // namespace perf
