// The twelve NCCL datatypes as the benchmarks see them: names, sizes, and
// conversion between an element's bytes and a double.
//
// Every value the benchmarks put in a buffer is a small integer (or, for
// floating `avg`, a quotient of small integers), so a double holds each one
// exactly and comparisons happen in doubles. half, bfloat16 and both fp8
// formats are converted here, by hand, with round-to-nearest-even: host code
// never includes CUDA headers for them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "nccl.h"

namespace perf {

struct TypeInfo {
  ncclDataType_t type;
  const char* name;     // nccl-tests' spelling, printed in the "type" column
  size_t size;          // bytes per element
  bool isFloat;
  bool isSigned;
  int mantissaBits;     // floating types: explicit mantissa bits (0 for integers)
  double denormMin;     // floating types: smallest positive value
  double range;         // inputs are integers in [-range, range] ([0, range] unsigned)
};

// Every datatype, in ncclDataType_t order (int8 ... f8e5m2).
const std::vector<TypeInfo>& allTypes();
const TypeInfo& typeInfo(ncclDataType_t type);

// "float", "fp32", "f8e4m3", ... or "all"; false for a name we do not know.
bool parseTypes(const std::string& text, std::vector<ncclDataType_t>* types);
// The accepted spellings, for the usage text.
std::string typeNamesHelp();

// A value no benchmark ever produces: the most negative finite value (the
// largest for unsigned types). Buffers start with it, so an element an
// operation should write but does not is caught.
double sentinel(ncclDataType_t type);

// n elements between doubles and the datatype's bytes. encode rounds to
// nearest even; fp8 saturates to its largest finite value, half and bfloat16
// overflow to infinity (the benchmarks never ask for either).
void encode(ncclDataType_t type, const double* values, size_t n, void* out);
void decode(ncclDataType_t type, const void* in, size_t n, double* values);

// The small-float codec, exposed for the unit test: a format with `expBits`
// exponent bits and `manBits` mantissa bits; `fnVariant` is fp8 e4m3's "fn"
// encoding (no infinities, only S.1111.111 is NaN).
unsigned encodeSmallFloat(double value, int expBits, int manBits, bool fnVariant);
double decodeSmallFloat(unsigned bits, int expBits, int manBits, bool fnVariant);

}  // namespace perf
