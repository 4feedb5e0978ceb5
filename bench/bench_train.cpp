// ifs-bench-train: training throughput of Trainer on the CPU, the peer of `peer.py train`.
//
//   ifs-bench-train ROOT --arch A --transform CODE [--batch B] [--threads T] [--workers W]
//                   [--warmup N] [--steps N] [--memory-format F] [--amp off|bf16|auto]
//                   [--finetune full|head] [--no-feature-cache]
//       Trains on the ImageFolder ROOT (device cpu, SGD lr 0.1 momentum 0.9 wd 5e-4, constant
//       rate) for N warm-up plus N timed optimizer steps, in float32 unless --amp says otherwise
//       (auto: as the app decides; the mode in effect goes to stderr). Head-only fine-tuning
//       with a train transform that draws no random numbers computes the backbone's features
//       once before the first step (its seconds go to stderr), unless --no-feature-cache.
//       Prints one line:
//       "<images/s over the timed steps> <peak RSS MB> <timed steps> <seconds> <input path>".
//   ifs-bench-train --small-cnn-source
//       Prints smallCnnPythonSource(), so that the peer trains exactly our small CNN.
#include "base/allocator.h"
#include "torch/runtime.h"
#include "training/models.h"
#include "training/training.h"

#include <QCoreApplication>
#include <QProcessEnvironment>
#include <QTemporaryDir>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <vector>

using namespace ifs;

namespace {

struct Tick
{
    qint64 step = 0;
    int epoch = 0;
    std::chrono::steady_clock::time_point time;
};

int usage()
{
    std::fprintf(stderr,
                 "usage: ifs-bench-train ROOT --arch A --transform CODE [--batch B] [--threads T] "
                 "[--workers W] [--warmup N] [--steps N] [--memory-format F] [--amp MODE] "
                 "[--finetune MODE] [--no-feature-cache]\n"
                 "       ifs-bench-train --small-cnn-source\n");
    return 2;
}

} // namespace

int main(int argc, char **argv)
{
    // As the app and the CLI do, first thing in main().
    tuneAllocator();
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    if (args.size() == 2 && args[1] == u"--small-cnn-source") {
        std::fputs(qPrintable(smallCnnPythonSource()), stdout);
        return 0;
    }
    if (args.size() < 2 || args[1].startsWith(u'-'))
        return usage();

    TrainConfig config;
    config.dataRoot = args[1];
    config.device = QStringLiteral("cpu");
    config.batchSize = 64;
    config.threads = 0;
    config.workers = 0;
    // As the peer: plain SGD at a constant rate, no validation, nothing saved along the way.
    config.optimizer = OptimizerKind::SGD;
    config.lr = 0.1;
    config.momentum = 0.9;
    config.weightDecay = 5e-4;
    config.schedule = ScheduleKind::Constant;
    config.valSplit = 0.0;
    config.epochs = 1000; // maxSteps ends the run
    config.amp = AmpMode::Off; // the fp32 figures unless asked
    int warmup = 10;
    int steps = 100;
    bool sayRuntime = false; // with --amp: which mode is in effect
    for (int i = 2; i < args.size(); ++i) {
        const bool hasValue = i + 1 < args.size();
        if (args[i] == u"--arch" && hasValue)
            config.arch = args[++i];
        else if (args[i] == u"--transform" && hasValue)
            config.trainTransforms = args[++i];
        else if (args[i] == u"--batch" && hasValue)
            config.batchSize = args[++i].toInt();
        else if (args[i] == u"--threads" && hasValue)
            config.threads = args[++i].toInt();
        else if (args[i] == u"--workers" && hasValue)
            config.workers = args[++i].toInt();
        else if (args[i] == u"--warmup" && hasValue)
            warmup = args[++i].toInt();
        else if (args[i] == u"--steps" && hasValue)
            steps = args[++i].toInt();
        else if (args[i] == u"--memory-format" && hasValue) {
            const auto format = memoryFormatFromName(args[++i]);
            if (!format)
                return usage();
            config.memoryFormat = *format;
        } else if (args[i] == u"--amp" && hasValue) {
            const auto amp = ampFromName(args[++i]);
            if (!amp)
                return usage();
            config.amp = *amp;
            sayRuntime = true;
        } else if (args[i] == u"--finetune" && hasValue) {
            const auto mode = finetuneFromName(args[++i]);
            if (!mode)
                return usage();
            config.finetune = *mode;
        } else if (args[i] == u"--no-feature-cache")
            config.cacheFeatures = false;
        else
            return usage();
    }
    if (warmup < 1 || steps < 1)
        return usage();
    config.maxSteps = warmup + steps;

    // Under torchrun: one rank of a data-parallel run (rank 0 reports the images of all).
    auto dist = DistEnv::fromEnvironment(QProcessEnvironment::systemEnvironment());
    if (!dist) {
        std::fprintf(stderr, "%s\n", qPrintable(dist.errorMessage()));
        return 1;
    }
    config.distributed = dist.value();
    const int world = config.distributed ? config.distributed->worldSize : 1;

    // As the app and the CLI do at start-up (allocator settings, thread count).
    config.threads = configureRuntime(config.threads);

    QTemporaryDir outDir;
    if (!outDir.isValid()) {
        std::fprintf(stderr, "cannot create a temporary folder: %s\n",
                     qPrintable(outDir.errorString()));
        return 1;
    }
    config.outDir = outDir.path();

    std::vector<Tick> ticks;
    ticks.reserve(size_t(config.maxSteps) + 1);
    QString inputPath;
    TrainCallbacks callbacks;
    callbacks.started = [&](const TrainStart &start) {
        inputPath = start.inputPath;
        if (sayRuntime)
            std::fprintf(stderr, "%s\n", qPrintable(start.runtime));
    };
    callbacks.status = [](const QString &status) {
        if (status.contains(u"computed once"))
            std::fprintf(stderr, "%s\n", qPrintable(status));
    };
    callbacks.step = [&](const StepProgress &progress) {
        ticks.push_back({progress.step, progress.epoch, std::chrono::steady_clock::now()});
    };
    Trainer trainer(config);
    const TrainFinish finish = trainer.run(callbacks);
    if (finish.outcome == TrainOutcome::Failed) {
        std::fprintf(stderr, "training failed: %s\n", qPrintable(finish.message));
        return 1;
    }

    // From the end of the last warm-up step to the end of the last step.
    const Tick *first = nullptr;
    for (const Tick &tick : ticks)
        if (tick.step >= warmup) {
            first = &tick;
            break;
        }
    if (first == nullptr || ticks.back().step <= first->step) {
        std::fprintf(stderr, "only %lld steps were reported (%s)\n",
                     static_cast<long long>(ticks.empty() ? 0 : ticks.back().step),
                     qPrintable(finish.message));
        return 1;
    }
    const Tick &last = ticks.back();
    if (last.epoch != first->epoch)
        std::fprintf(stderr, "note: the timed steps cross an epoch boundary; use more data\n");
    const double seconds = std::chrono::duration<double>(last.time - first->time).count();
    const qint64 timedSteps = last.step - first->step;
    const double imagesPerSecond = double(timedSteps) * config.batchSize * world / seconds;
    if (config.distributed && config.distributed->rank > 0)
        return 0;

    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("%.2f %.0f %lld %.3f %s\n", imagesPerSecond, double(usage.ru_maxrss) / 1024.0,
                static_cast<long long>(timedSteps), seconds, qPrintable(inputPath));
    return 0;
}
