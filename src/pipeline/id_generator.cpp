#include "pipeline/id_generator.h"

#include <sys/random.h>

#include <cerrno>
#include <chrono>

namespace sonde::pipeline {
namespace {

// splitmix64 (Steele, Lea, Flood): expands one 64-bit seed into well-mixed state words.
uint64_t splitmix64(uint64_t& x) noexcept {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
}

void store_be64(uint64_t v, uint8_t* out) noexcept {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}

}  // namespace

IdGenerator::IdGenerator() noexcept {
    std::array<uint64_t, 4> seed{};
    size_t got = 0;
    auto* bytes = reinterpret_cast<uint8_t*>(seed.data());
    while (got < sizeof(seed)) {
        const ssize_t n = getrandom(bytes + got, sizeof(seed) - got, GRND_NONBLOCK);
        if (n > 0) {
            got += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;  // ENOSYS, or EAGAIN before the entropy pool is initialised
        }
    }
    if (got == sizeof(seed)) {
        state_ = seed;
        seeded_from_kernel_ = true;
    } else {
        const auto now =
            static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        const auto wall =
            static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
        seed_with(now ^ rotl(wall, 32) ^ reinterpret_cast<uintptr_t>(this));
    }
    // xoshiro's one forbidden state; 2^-256 from the kernel, but cheap to rule out.
    if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) seed_with(0);
}

IdGenerator::IdGenerator(uint64_t seed) noexcept {
    seed_with(seed);
}

IdGenerator::IdGenerator(const std::array<uint64_t, 4>& state) noexcept : state_(state) {
    if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) seed_with(0);
}

void IdGenerator::seed_with(uint64_t seed) noexcept {
    uint64_t x = seed;
    for (auto& word : state_) word = splitmix64(x);
}

// xoshiro256** 1.0 (Blackman, Vigna), https://prng.di.unimi.it/
uint64_t IdGenerator::next() noexcept {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
}

TraceId IdGenerator::new_trace_id() noexcept {
    TraceId id;
    do {
        store_be64(next(), id.data());
        store_be64(next(), id.data() + 8);
    } while (is_all_zero(id.data(), id.size()));
    return id;
}

SpanId IdGenerator::new_span_id() noexcept {
    SpanId id;
    do {
        store_be64(next(), id.data());
    } while (is_all_zero(id.data(), id.size()));
    return id;
}

}  // namespace sonde::pipeline
