// What the protocol fuzzers share: a deterministic generator seeded from the
// input, and the cutting of a byte stream into the pieces the kernel would
// hand over (one per syscall), some only partly captured, some claiming
// bytes the input does not hold, some inconsistent on purpose.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "protocols/protocol.h"

namespace sonde::fuzz {

// FNV-1a of the input: the seed of everything random a fuzzer does with it.
inline uint64_t fnv1a(const uint8_t* data, size_t size) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 0x100000001b3ULL;
    return h;
}

// A violated invariant is a crash the fuzzer reports.
inline void check(bool condition) {
    if (!condition) std::abort();
}

// splitmix64: small, fast, and fully determined by the input's hash.
class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }

private:
    uint64_t state_;
};

// How pieces are sized: usually up to `usual_max` bytes, one time in
// `odd_one_in` up to `odd_max`; one piece in `perturb_one_in` has its capture
// or its length changed (three kinds of change, equally likely).
struct PieceShape {
    uint64_t odd_one_in;
    size_t usual_max;
    size_t odd_max;
    uint64_t perturb_one_in;
};

struct CutPiece {
    protocols::StreamPiece piece;
    size_t consumed = 0;  // input bytes the piece stands for
};

// The next piece of `bytes` from `pos` on; `now` advances past its exit time.
inline CutPiece cut_piece(Rng& rng, std::span<const uint8_t> bytes, size_t pos, uint64_t& now,
                          const PieceShape& shape) {
    const size_t max_piece = rng.below(shape.odd_one_in) == 0 ? shape.odd_max : shape.usual_max;
    const size_t size = std::min<size_t>(bytes.size() - pos, 1 + rng.below(max_piece));
    size_t captured = size;
    uint64_t length = size;
    switch (rng.below(shape.perturb_one_in)) {
        case 0:
            captured = rng.below(size + 1);  // the tail was not copied
            break;
        case 1:
            length += rng.below(70000);  // more bytes than the input holds
            break;
        case 2:
            length = rng.below(size + 1);  // inconsistent: fewer than captured
            break;
        default:
            break;
    }
    CutPiece cut;
    cut.piece.captured = bytes.subspan(pos, captured);
    cut.piece.length = length;
    cut.piece.ts_enter_ns = now;
    cut.piece.ts_exit_ns = now + rng.below(5);
    now = cut.piece.ts_exit_ns + 1;
    cut.consumed = size;
    return cut;
}

}  // namespace sonde::fuzz
