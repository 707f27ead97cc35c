#include "perf_types.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>

namespace perf {

namespace {

// Ranges keep every input an integer the type holds exactly (fp8 e5m2 holds
// every integer up to 8, e4m3 up to 16, bfloat16 up to 256, half up to 2048).
const std::vector<TypeInfo> kTypes = {
    {ncclInt8, "int8", 1, false, true, 0, 0, 100},
    {ncclUint8, "uint8", 1, false, false, 0, 0, 200},
    {ncclInt32, "int32", 4, false, true, 0, 0, 1 << 20},
    {ncclUint32, "uint32", 4, false, false, 0, 0, 1 << 20},
    {ncclInt64, "int64", 8, false, true, 0, 0, 1 << 20},
    {ncclUint64, "uint64", 8, false, false, 0, 0, 1 << 20},
    {ncclFloat16, "half", 2, true, true, 10, 0x1p-24, 2048},
    {ncclFloat32, "float", 4, true, true, 23, 0x1p-149, 1 << 24},
    {ncclFloat64, "double", 8, true, true, 52, 0x1p-1074, 1 << 30},
    {ncclBfloat16, "bfloat16", 2, true, true, 7, 0x1p-133, 256},
    {ncclFloat8e4m3, "f8e4m3", 1, true, true, 3, 0x1p-9, 16},
    {ncclFloat8e5m2, "f8e5m2", 1, true, true, 2, 0x1p-16, 8},
};

struct Alias {
  const char* name;
  ncclDataType_t type;
};
// nccl-tests' names come first; the rest are NCCL's enum names without the prefix.
const Alias kAliases[] = {
    {"char", ncclInt8},         {"uchar", ncclUint8},       {"int", ncclInt32},
    {"uint", ncclUint32},       {"float16", ncclFloat16},   {"fp16", ncclFloat16},
    {"float32", ncclFloat32},   {"fp32", ncclFloat32},      {"float64", ncclFloat64},
    {"fp64", ncclFloat64},      {"bf16", ncclBfloat16},     {"fp8e4m3", ncclFloat8e4m3},
    {"float8e4m3", ncclFloat8e4m3}, {"e4m3", ncclFloat8e4m3}, {"fp8e5m2", ncclFloat8e5m2},
    {"float8e5m2", ncclFloat8e5m2}, {"e5m2", ncclFloat8e5m2},
};

template <typename T>
void encodeAs(const double* values, size_t n, void* out) {
  T* t = static_cast<T*>(out);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<T>(values[i]);
}

// Integers clamp: UINT64_MAX, the uint64 sentinel, is 2^64 as a double, which
// a plain conversion would not survive.
template <typename T>
void encodeInt(const double* values, size_t n, void* out) {
  T* t = static_cast<T*>(out);
  const double hi = static_cast<double>(std::numeric_limits<T>::max());
  const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
  for (size_t i = 0; i < n; ++i)
    t[i] = values[i] >= hi   ? std::numeric_limits<T>::max()
           : values[i] <= lo ? std::numeric_limits<T>::lowest()
                             : static_cast<T>(values[i]);
}

template <typename T>
void decodeAs(const void* in, size_t n, double* values) {
  const T* t = static_cast<const T*>(in);
  for (size_t i = 0; i < n; ++i) values[i] = static_cast<double>(t[i]);
}

template <typename Bits>
void encodeSmall(const double* values, size_t n, void* out, int e, int m, bool fn) {
  Bits* b = static_cast<Bits*>(out);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<Bits>(encodeSmallFloat(values[i], e, m, fn));
}

template <typename Bits>
void decodeSmall(const void* in, size_t n, double* values, int e, int m, bool fn) {
  const Bits* b = static_cast<const Bits*>(in);
  for (size_t i = 0; i < n; ++i) values[i] = decodeSmallFloat(b[i], e, m, fn);
}

}  // namespace

const std::vector<TypeInfo>& allTypes() { return kTypes; }

const TypeInfo& typeInfo(ncclDataType_t type) { return kTypes.at(static_cast<size_t>(type)); }

namespace {

bool parseOneType(const std::string& text, ncclDataType_t* type) {
  for (const TypeInfo& t : kTypes)
    if (text == t.name) {
      *type = t.type;
      return true;
    }
  for (const Alias& a : kAliases)
    if (text == a.name) {
      *type = a.type;
      return true;
    }
  return false;
}

}  // namespace

bool parseTypes(const std::string& text, std::vector<ncclDataType_t>* types) {
  types->clear();
  if (text == "all") {
    for (const TypeInfo& t : kTypes) types->push_back(t.type);
    return true;
  }
  size_t begin = 0;
  while (begin <= text.size()) {  // a comma-separated list (a Chorus extension)
    const size_t end = std::min(text.find(',', begin), text.size());
    ncclDataType_t type;
    if (!parseOneType(text.substr(begin, end - begin), &type)) return false;
    types->push_back(type);
    begin = end + 1;
  }
  return !types->empty();
}

std::string typeNamesHelp() {
  std::string s;
  for (const TypeInfo& t : kTypes) s += std::string(t.name) + "/";
  return s + "all";
}

double sentinel(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: return -128;
    case ncclUint8: return 255;
    case ncclInt32: return static_cast<double>(INT32_MIN);
    case ncclUint32: return static_cast<double>(UINT32_MAX);
    case ncclInt64: return static_cast<double>(INT64_MIN);
    case ncclUint64: return static_cast<double>(UINT64_MAX);
    case ncclFloat16: return -65504.0;
    case ncclFloat32: return -static_cast<double>(FLT_MAX);
    case ncclFloat64: return -DBL_MAX;
    case ncclBfloat16: return -0x1.fep127;
    case ncclFloat8e4m3: return -448.0;
    case ncclFloat8e5m2: return -57344.0;
    default: return 0;
  }
}

// Rounds |value| to a multiple of the format's spacing at that magnitude.
// The sum (exponent field << manBits) + mantissa then carries on its own: a
// mantissa that rounds up to 2^(manBits+1) lands on the next exponent, and a
// subnormal that rounds up to 2^manBits becomes the smallest normal.
unsigned encodeSmallFloat(double value, int expBits, int manBits, bool fnVariant) {
  const unsigned signBit = 1u << (expBits + manBits);
  const unsigned sign = std::signbit(value) ? signBit : 0;
  const unsigned expAll = (1u << expBits) - 1;
  const unsigned nanBits = fnVariant ? (expAll << manBits) | ((1u << manBits) - 1)
                                     : (expAll << manBits) | (1u << (manBits - 1));
  if (std::isnan(value)) return sign | nanBits;
  const int bias = (1 << (expBits - 1)) - 1;
  // Largest finite encoding: fn formats use the top exponent too (but not all-ones mantissa).
  const unsigned maxFinite = fnVariant ? nanBits - 1 : (expAll << manBits) - 1;
  const unsigned infBits = expAll << manBits;
  double a = std::fabs(value);
  if (std::isinf(a)) return sign | (fnVariant ? maxFinite : infBits);  // fn has no infinity
  if (a == 0) return sign;
  int e2 = 0;
  std::frexp(a, &e2);  // a = f * 2^e2, f in [0.5, 1): the unbiased exponent is e2 - 1
  int unbiased = e2 - 1;
  if (unbiased < 1 - bias) unbiased = 1 - bias;  // subnormal: fixed spacing
  const double quantum = std::ldexp(1.0, unbiased - manBits);
  const double q = std::nearbyint(a / quantum);  // exact division by a power of two; ties to even
  uint64_t m = static_cast<uint64_t>(q);
  uint64_t bits = (static_cast<uint64_t>(unbiased + bias - 1) << manBits) + m;
  const bool saturate = expBits + manBits + 1 == 8;  // both fp8 formats saturate
  if (bits > maxFinite) bits = saturate ? maxFinite : infBits;
  return sign | static_cast<unsigned>(bits);
}

double decodeSmallFloat(unsigned bits, int expBits, int manBits, bool fnVariant) {
  const unsigned expAll = (1u << expBits) - 1;
  const bool negative = (bits >> (expBits + manBits)) & 1u;
  const unsigned exp = (bits >> manBits) & expAll;
  const unsigned man = bits & ((1u << manBits) - 1);
  const int bias = (1 << (expBits - 1)) - 1;
  double v;
  if (!fnVariant && exp == expAll)
    v = man ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (fnVariant && exp == expAll && man == (1u << manBits) - 1)
    v = std::numeric_limits<double>::quiet_NaN();
  else if (exp == 0)
    v = std::ldexp(static_cast<double>(man), 1 - bias - manBits);
  else
    v = std::ldexp(static_cast<double>(man | (1u << manBits)), static_cast<int>(exp) - bias - manBits);
  return negative ? -v : v;
}

void encode(ncclDataType_t type, const double* values, size_t n, void* out) {
  switch (type) {
    case ncclInt8: return encodeInt<int8_t>(values, n, out);
    case ncclUint8: return encodeInt<uint8_t>(values, n, out);
    case ncclInt32: return encodeInt<int32_t>(values, n, out);
    case ncclUint32: return encodeInt<uint32_t>(values, n, out);
    case ncclInt64: return encodeInt<int64_t>(values, n, out);
    case ncclUint64: return encodeInt<uint64_t>(values, n, out);
    case ncclFloat16: return encodeSmall<uint16_t>(values, n, out, 5, 10, false);
    case ncclFloat32: return encodeAs<float>(values, n, out);
    case ncclFloat64: return encodeAs<double>(values, n, out);
    case ncclBfloat16: return encodeSmall<uint16_t>(values, n, out, 8, 7, false);
    case ncclFloat8e4m3: return encodeSmall<uint8_t>(values, n, out, 4, 3, true);
    case ncclFloat8e5m2: return encodeSmall<uint8_t>(values, n, out, 5, 2, false);
    default: return;
  }
}

void decode(ncclDataType_t type, const void* in, size_t n, double* values) {
  switch (type) {
    case ncclInt8: return decodeAs<int8_t>(in, n, values);
    case ncclUint8: return decodeAs<uint8_t>(in, n, values);
    case ncclInt32: return decodeAs<int32_t>(in, n, values);
    case ncclUint32: return decodeAs<uint32_t>(in, n, values);
    case ncclInt64: return decodeAs<int64_t>(in, n, values);
    case ncclUint64: return decodeAs<uint64_t>(in, n, values);
    case ncclFloat16: return decodeSmall<uint16_t>(in, n, values, 5, 10, false);
    case ncclFloat32: return decodeAs<float>(in, n, values);
    case ncclFloat64: return decodeAs<double>(in, n, values);
    case ncclBfloat16: return decodeSmall<uint16_t>(in, n, values, 8, 7, false);
    case ncclFloat8e4m3: return decodeSmall<uint8_t>(in, n, values, 4, 3, true);
    case ncclFloat8e5m2: return decodeSmall<uint8_t>(in, n, values, 5, 2, false);
    default: return;
  }
}

}  // namespace perf
