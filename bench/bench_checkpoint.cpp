// ifs-bench-checkpoint: seconds to read or write a checkpoint, timed inside one fresh process
// like the Python peer in bench/peer.py (imports and start-up not counted on either side).
//
//   ifs-bench-checkpoint load FILE [--touch]   read (into memory with pread, CRCs checked);
//                                              --touch also reads every tensor byte once
//   ifs-bench-checkpoint save IN OUT [--quick]  read IN, then time writing it to OUT (--quick:
//                                              without waiting for the disk, as torch.save)
#include "base/allocator.h"
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointwriter.h"

#include <QCoreApplication>
#include <QElapsedTimer>

#include <cstdio>

using namespace ifs;
using namespace ifs::ckpt;

int main(int argc, char **argv)
{
    tuneAllocator();
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    if (args.size() < 3) {
        std::fprintf(stderr, "usage: ifs-bench-checkpoint load FILE [--touch] | save IN OUT\n");
        return 2;
    }
    QElapsedTimer timer;
    if (args[1] == u"load") {
        const bool touch = args.contains(QStringLiteral("--touch"));
        timer.start();
        const Result<CheckpointFile> file = readCheckpoint(args[2]);
        if (!file) {
            std::fprintf(stderr, "%s\n", qPrintable(file.errorMessage()));
            return 1;
        }
        quint64 sum = 0;
        if (touch)
            for (const StoragePtr &storage : storagesOf(file->root)) {
                const QByteArray bytes = storage->data().value(); // loaded: an eager read
                for (qsizetype i = 0; i < bytes.size(); i += 64)
                    sum += uchar(bytes[i]);
            }
        std::printf("%.4f %llu\n", double(timer.nsecsElapsed()) / 1e9,
                    static_cast<unsigned long long>(sum));
        return 0;
    }
    if (args[1] == u"save" && args.size() >= 4) {
        // In memory (the default eager read), as torch.load leaves it for torch.save.
        const Result<CheckpointFile> file = readCheckpoint(args[2]);
        if (!file) {
            std::fprintf(stderr, "%s\n", qPrintable(file.errorMessage()));
            return 1;
        }
        timer.start();
        WriteOptions options;
        options.durable = !args.contains(QStringLiteral("--quick"));
        const Status written = writeCheckpoint(args[3], file->root, options);
        if (!written) {
            std::fprintf(stderr, "%s\n", qPrintable(written.errorMessage()));
            return 1;
        }
        std::printf("%.4f\n", double(timer.nsecsElapsed()) / 1e9);
        return 0;
    }
    std::fprintf(stderr, "unknown command\n");
    return 2;
}
