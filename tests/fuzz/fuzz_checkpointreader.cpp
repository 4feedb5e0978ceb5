// libFuzzer entry point: any bytes given to the checkpoint reader must give a value or an error,
// never a crash, a hang, a leak or undefined behaviour. Tensors it returns must fit their storage.
// Each input is read twice: eagerly, and on demand with every storage then loaded and streamed
// (the path of `inspect --stats` and the Checkpoints workspace).
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointsummary.h"

#include <QByteArray>

#include <cstddef>
#include <cstdint>

namespace {

void useTensors(const ifs::ckpt::CheckpointFile &file)
{
    using namespace ifs::ckpt;
    // What the reader returns is safe to use: every tensor's view fits its storage.
    for (const StoragePtr &storage : storagesOf(file.root)) {
        if (storage->byteCount() % elementSize(storage->dtype) != 0)
            __builtin_trap();
        const ifs::Result<QByteArray> data = storage->data();
        if (data && data->size() != storage->byteCount())
            __builtin_trap();
    }
    const ifs::Result<StateDict> weights = extractStateDict(file.root);
    if (weights)
        for (const Value::Entry &entry : weights->tensors.entries())
            if (entry.second.isTensor()) {
                const Tensor t = entry.second.toTensor();
                if (t.checkLayout()) {
                    (void)t.contiguousBytes();
                    (void)computeTensorStats(t);
                }
            }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using namespace ifs::ckpt;
    // A copy, since storages may keep the buffer alive past this call's data.
    const QByteArray bytes(reinterpret_cast<const char *>(data), qsizetype(size));
    ReadOptions options;
    options.maxPickleObjects = 1 << 16;
    options.maxInflatedBytes = qint64(256) << 20;
    const ifs::Result<CheckpointFile> file = readCheckpoint(bytes, options, QStringLiteral("fuzz"));
    if (file)
        useTensors(file.value());
    options.tensorData = ReadOptions::TensorData::OnDemand;
    const ifs::Result<CheckpointFile> lazy = readCheckpoint(bytes, options, QStringLiteral("fuzz"));
    if (lazy)
        useTensors(lazy.value());
    return 0;
}
