#pragma once

#include "base/result.h"
#include "checkpoint/checkpointvalue.h"

#include <QByteArray>
#include <QString>
#include <QStringList>

#include <functional>
#include <optional>

/// Internal to the checkpoint reader: a restricted pickle interpreter.
namespace ifs::ckpt::detail {

/// A storage, or a view of one (legacy files), as a persistent id names it.
struct StorageRef
{
    StoragePtr storage;
    qint64 offset = 0; ///< in elements, where the view starts in `storage`
    qint64 numel = 0; ///< elements of the view
};

/// What a persistent id stands for: a storage, or any other value (legacy files name a module's
/// class as `('module', cls, file, source)`).
struct PersistentValue
{
    std::optional<StorageRef> storage;
    Value value;
};

/// How unpickle() runs.
struct UnpickleOptions
{
    /// Names the pickle in errors: "the pickle data.pkl".
    QString name = QStringLiteral("the pickle");
    /// The pickle runs to the end of the file (legacy files, plain pickles): data that ends early
    /// means a truncated file rather than a damaged record.
    bool endIsEndOfFile = false;
    /// Loads a persistent id (BINPERSID), given as a Value: a Tuple whose globals appear as
    /// Objects without args (`torch.FloatStorage` → Object("torch", "FloatStorage")). Unset: a
    /// persistent id is an error.
    std::function<Result<PersistentValue>(const Value &pid)> persistentLoad;
    /// Reads the bytes that `torch.storage._load_from_bytes` holds (a legacy torch.save stream of
    /// one storage, what plain `pickle.dumps(tensor)` writes). Unset: such storages stay inert.
    std::function<Result<StorageRef>(const QByteArray &bytes)> loadFromBytes;
    /// Containers nested deeper than this are an error. Real checkpoints nest a few dozen levels
    /// (three per nn.Module level); converting costs about 1 KiB of stack per level, and worker
    /// threads may have only 1 MiB (Windows).
    int maxDepth = 256;
    /// Objects the pickle may create; past this the pickle is refused, not allocated.
    qint64 maxObjects = qint64(1) << 21;
    /// Values of the tree once shared references are expanded (a "billion laughs" pickle
    /// repeats a reference to a list of references...).
    qint64 maxExpanded = qint64(1) << 25;
};

/// What unpickle() produced.
struct Unpickled
{
    Value value;
    /// Objects kept inert, state ignored, values converted, each with the place where it sits:
    /// `root["hyper_parameters"]["args"]: argparse.Namespace kept as an inert object ...`.
    QStringList warnings;
    /// Classes of torch.nn.Module-like objects (state with `_parameters` and `_modules`), once
    /// each, outermost first.
    QStringList moduleClasses;
    /// `__torch__.*` classes (TorchScript), once each.
    QStringList scriptClasses;
    /// Offset just past the STOP opcode (legacy files hold several pickles in a row).
    qint64 end = 0;
    /// The PROTO opcode's protocol; 0 or 1 without one.
    int protocol = 0;
};

/// Runs the pickle that starts at `data[start]` (and must end before `data[size]`) without
/// executing anything: no module is imported and nothing a pickle names is called. What torch
/// checkpoints use becomes Values (tensors from `torch._utils._rebuild_tensor_v2` and friends,
/// `collections.OrderedDict`, `torch.Size`, `torch.device`, dtypes, numpy arrays and scalars,
/// `_codecs.encode`); any other global becomes an inert Object (module, name, args, BUILD state)
/// and a warning names it and its place in the tree. Errors name the opcode and its offset.
Result<Unpickled> unpickle(const char *data, qint64 size, qint64 start,
                           const UnpickleOptions &options);

} // namespace ifs::ckpt::detail
