#include "ebpf/consumer_priority.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <string>
#include <thread>

namespace sonde::ebpf {
namespace {

using namespace std::chrono_literals;

// The scheduling policy of thread `tid`, as the kernel reports it.
int policy_of(pid_t tid) {
    return sched_getscheduler(tid);
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(2ms);
    }
    return condition();
}

class ConsumerPriorityTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!ConsumerPriority::can_return_from_idle())
            GTEST_SKIP() << "needs CAP_SYS_NICE (run as root) to leave SCHED_IDLE again";
    }

    // A consumer thread that builds a ConsumerPriority and keeps it until told to stop.
    struct Consumer {
        std::atomic<uint64_t> backlog{0};
        std::promise<void> stop;
        std::atomic<pid_t> tid{0};
        std::atomic<ConsumerPriority*> priority{nullptr};
        std::thread thread;

        explicit Consumer(const ConsumerPriorityOptions& options) {
            std::promise<void> ready;
            auto started = ready.get_future();
            thread = std::thread([this, options, &ready, stopped = stop.get_future()] {
                ConsumerPriority p([this] { return backlog.load(); }, options);
                tid = gettid();
                priority = &p;
                ready.set_value();
                stopped.wait();
                priority = nullptr;
            });
            started.wait();
        }
        ~Consumer() {
            stop.set_value();
            thread.join();
        }
    };

    static ConsumerPriorityOptions fast_options() {
        ConsumerPriorityOptions o;
        o.escalate_at_bytes = 1000;
        o.caught_up_below_bytes = 100;
        o.min_normal = 150ms;
        o.check_every = 5ms;
        return o;
    }
};

TEST_F(ConsumerPriorityTest, ConsumerRunsIdleWhileTheBacklogIsSmall) {
    Consumer c(fast_options());
    EXPECT_EQ(policy_of(c.tid), SCHED_IDLE);
    EXPECT_TRUE(c.priority.load()->yielding());
    c.backlog = 999;  // below the threshold: stays idle
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(policy_of(c.tid), SCHED_IDLE);
    EXPECT_EQ(c.priority.load()->escalations(), 0u);
}

TEST_F(ConsumerPriorityTest, BacklogGivesNormalPriorityBackUntilCaughtUp) {
    Consumer c(fast_options());
    c.backlog = 1000;
    ASSERT_TRUE(eventually([&] { return policy_of(c.tid) == SCHED_OTHER; }, 500ms));
    const auto raised_at = std::chrono::steady_clock::now();
    EXPECT_FALSE(c.priority.load()->yielding());
    EXPECT_EQ(c.priority.load()->escalations(), 1u);
    // Below the raise threshold but not caught up: stays normal, past min_normal too.
    c.backlog = 500;
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(policy_of(c.tid), SCHED_OTHER);
    c.backlog = 99;
    ASSERT_TRUE(eventually([&] { return policy_of(c.tid) == SCHED_IDLE; }, 500ms));
    EXPECT_TRUE(c.priority.load()->yielding());
    EXPECT_EQ(c.priority.load()->escalations(), 1u);
    EXPECT_GE(std::chrono::steady_clock::now() - raised_at, 290ms);
}

TEST_F(ConsumerPriorityTest, CaughtUpAtOnceStillStaysNormalForMinNormal) {
    Consumer c(fast_options());
    c.backlog = 5000;
    ASSERT_TRUE(eventually([&] { return policy_of(c.tid) == SCHED_OTHER; }, 500ms));
    const auto raised_at = std::chrono::steady_clock::now();
    c.backlog = 0;
    ASSERT_TRUE(eventually([&] { return policy_of(c.tid) == SCHED_IDLE; }, 1000ms));
    // Not before min_normal (150 ms): raised_at is when the test saw the raise,
    // at most one 2 ms poll after it happened.
    EXPECT_GE(std::chrono::steady_clock::now() - raised_at, 140ms);
}

TEST_F(ConsumerPriorityTest, FallingBehindAgainRaisesAgain) {
    Consumer c(fast_options());
    for (uint64_t round = 1; round <= 3; ++round) {
        c.backlog = 2000;
        ASSERT_TRUE(eventually([&] { return c.priority.load()->escalations() == round; }, 500ms));
        EXPECT_EQ(policy_of(c.tid), SCHED_OTHER);
        c.backlog = 0;
        ASSERT_TRUE(eventually([&] { return policy_of(c.tid) == SCHED_IDLE; }, 1000ms));
    }
    EXPECT_EQ(c.priority.load()->escalations(), 3u);
}

TEST_F(ConsumerPriorityTest, DestructionRestoresNormalPriority) {
    pid_t tid = 0;
    int during = -1;
    int after = -1;
    std::thread t([&] {
        tid = gettid();
        {
            ConsumerPriority p([] { return uint64_t{0}; }, fast_options());
            during = policy_of(0);
        }
        after = policy_of(0);
    });
    t.join();
    EXPECT_NE(tid, 0);
    EXPECT_EQ(during, SCHED_IDLE);
    EXPECT_EQ(after, SCHED_OTHER);
}

TEST_F(ConsumerPriorityTest, OnlyTheConsumerThreadIsIdle) {
    // The watcher must keep normal priority (it is started before the
    // consumer turns idle: threads inherit their creator's policy), and no
    // other thread of the process is touched.
    Consumer c(fast_options());
    int idle = 0;
    int threads = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        const pid_t tid = std::stoi(task.path().filename().string());
        ++threads;
        if (policy_of(tid) == SCHED_IDLE) {
            ++idle;
            EXPECT_EQ(tid, c.tid.load());
        }
    }
    EXPECT_GE(threads, 3);  // this one, the consumer, the watcher
    EXPECT_EQ(idle, 1);
}

}  // namespace
}  // namespace sonde::ebpf
