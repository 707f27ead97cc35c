// Checks the hand-written small-float codec against known encodings, and that
// every value the benchmarks use round-trips exactly in every datatype.
#include <cmath>
#include <cstdio>
#include <vector>

#include "pattern.h"
#include "perf_types.h"

namespace {

int failures = 0;

void expectBits(const char* what, unsigned got, unsigned want) {
  if (got == want) return;
  printf("FAIL %s: 0x%x, want 0x%x\n", what, got, want);
  ++failures;
}

void expectValue(const char* what, double got, double want) {
  if (got == want || (std::isnan(got) && std::isnan(want))) return;
  printf("FAIL %s: %.17g, want %.17g\n", what, got, want);
  ++failures;
}

}  // namespace

int main() {
  using perf::decodeSmallFloat;
  using perf::encodeSmallFloat;
  // half (5, 10), bfloat16 (8, 7), fp8 e4m3fn (4, 3) and e5m2 (5, 2)
  expectBits("half 1", encodeSmallFloat(1.0, 5, 10, false), 0x3c00);
  expectBits("half -2", encodeSmallFloat(-2.0, 5, 10, false), 0xc000);
  expectBits("half max", encodeSmallFloat(65504.0, 5, 10, false), 0x7bff);
  expectBits("half overflow", encodeSmallFloat(65520.0, 5, 10, false), 0x7c00);
  expectBits("half min subnormal", encodeSmallFloat(0x1p-24, 5, 10, false), 0x0001);
  expectBits("half tie to even", encodeSmallFloat(2049.0, 5, 10, false), 0x6800);
  expectBits("bf16 1", encodeSmallFloat(1.0, 8, 7, false), 0x3f80);
  expectBits("bf16 3", encodeSmallFloat(3.0, 8, 7, false), 0x4040);
  expectBits("e4m3 1", encodeSmallFloat(1.0, 4, 3, true), 0x38);
  expectBits("e4m3 448", encodeSmallFloat(448.0, 4, 3, true), 0x7e);
  expectBits("e4m3 saturates", encodeSmallFloat(1000.0, 4, 3, true), 0x7e);
  expectBits("e4m3 min subnormal", encodeSmallFloat(0x1p-9, 4, 3, true), 0x01);
  expectBits("e4m3 nan", encodeSmallFloat(NAN, 4, 3, true), 0x7f);
  expectBits("e5m2 1", encodeSmallFloat(1.0, 5, 2, false), 0x3c);
  expectBits("e5m2 57344", encodeSmallFloat(57344.0, 5, 2, false), 0x7b);
  expectBits("e5m2 -8", encodeSmallFloat(-8.0, 5, 2, false), 0xc8);
  expectValue("e4m3 0x7e", decodeSmallFloat(0x7e, 4, 3, true), 448.0);
  expectValue("e4m3 0x7f", decodeSmallFloat(0x7f, 4, 3, true), NAN);
  expectValue("e5m2 0x7c", decodeSmallFloat(0x7c, 5, 2, false), INFINITY);
  expectValue("half 0x3555", decodeSmallFloat(0x3555, 5, 10, false), 0x1.554p-2);

  // Every input, reduction result and sentinel round-trips in every datatype.
  for (const perf::TypeInfo& t : perf::allTypes()) {
    std::vector<double> values;
    const double step = t.range > 2048 ? std::floor(t.range / 1024) : 1;  // every value of small types
    for (double v = -t.range; v <= t.range; v += step)
      if (t.isSigned || v >= 0) values.push_back(v);
    values.push_back(perf::sentinel(t.type));
    for (int op = 0; op < 6; ++op) {
      const perf::Pattern p(t.type, true, static_cast<perf::Reduction>(op), 5, 42);
      for (size_t i = 0; i < 200; ++i)
        if (static_cast<perf::Reduction>(op) != perf::Reduction::Avg || !t.isFloat)
          values.push_back(p.reduced(i));
    }
    std::vector<unsigned char> bytes(values.size() * t.size);
    std::vector<double> back(values.size());
    perf::encode(t.type, values.data(), values.size(), bytes.data());
    perf::decode(t.type, bytes.data(), values.size(), back.data());
    for (size_t i = 0; i < values.size(); ++i)
      if (back[i] != values[i]) {
        printf("FAIL %s: %.17g comes back as %.17g\n", t.name, values[i], back[i]);
        ++failures;
        break;
      }
  }
  printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
