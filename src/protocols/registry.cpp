#include "protocols/registry.h"

#include "protocols/http1/http1.h"
#include "protocols/http2/http2.h"

namespace sonde::protocols {

namespace {

// The role a request seen in `direction` implies: a process that receives a
// request is its server.
Role role_of_request_direction(Direction direction) {
    return direction == Direction::Ingress ? Role::Server : Role::Client;
}

Detection detect_http1(Direction direction, std::span<const uint8_t> bytes, Role known_role) {
    if (!http1::looks_like_message_start(bytes, /*is_request=*/true)) {
        // A client's response can reach the agent before the request that asked for it
        // (the handler pairs them: see its EarlyResponse); the connection's role says
        // which side it is on.
        if (known_role == Role::Client && direction == Direction::Ingress &&
            http1::looks_like_message_start(bytes, /*is_request=*/false))
            return {http1::make_handler(Role::Client), "http1"};
        return {};
    }
    const Role implied = role_of_request_direction(direction);
    // A request flowing the wrong way for the known role is not HTTP we can pair.
    if (known_role != Role::Unknown && known_role != implied) return {};
    return {http1::make_handler(implied), "http1"};
}

// Before HTTP/1: the preface reads as a request line with the method "PRI".
Detection detect_http2(Direction direction, std::span<const uint8_t> bytes, Role known_role) {
    if (http2::starts_with_preface(bytes)) {
        // Only a client sends the preface, so whoever sends it is the client,
        // and the connection is seen from its first byte: HPACK state is exact.
        return {http2::make_handler(role_of_request_direction(direction),
                                    /*from_connection_start=*/true),
                "http2"};
    }
    if (http2::looks_like_frames(bytes)) {
        return {http2::make_handler(known_role, /*from_connection_start=*/false), "http2"};
    }
    return {};
}

using Detector = Detection (*)(Direction, std::span<const uint8_t>, Role);
constexpr Detector kDetectors[] = {
    detect_http2,
    detect_http1,
};

}  // namespace

Detection detect_protocol(Direction direction, std::span<const uint8_t> first_bytes,
                          Role known_role) {
    for (Detector detector : kDetectors) {
        Detection found = detector(direction, first_bytes, known_role);
        if (found.handler) return found;
    }
    return {};
}

}  // namespace sonde::protocols
