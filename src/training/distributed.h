#pragma once

// Data-parallel training on PyTorch's own engine: one process per rank, started by torchrun (or
// by the app the same way), talking through c10d. This header is the torch-free part: what
// torchrun tells a worker, torch.utils.data.DistributedSampler's indices, and DDP's bucket
// assignment. src/torch/processgroup.* holds the process group itself.

#include "base/result.h"

#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

#include <cstdint>
#include <optional>
#include <vector>

namespace ifs {

/// A worker's place in a torchrun job, from the variables torchrun sets (and Python's env://
/// rendezvous reads).
struct DistEnv
{
    int rank = 0; ///< RANK
    int localRank = 0; ///< LOCAL_RANK
    int worldSize = 1; ///< WORLD_SIZE
    int localWorldSize = 1; ///< LOCAL_WORLD_SIZE
    QString masterAddr; ///< MASTER_ADDR
    quint16 masterPort = 0; ///< MASTER_PORT
    int restartCount = 0; ///< TORCHELASTIC_RESTART_COUNT
    /// TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent serves the store (its default static
    /// rendezvous); every rank, rank 0 included, is a client and prefixes its keys with
    /// "/worker/attempt_<restartCount>". Otherwise (--standalone, c10d rendezvous) rank 0
    /// serves it.
    bool agentStore = false;
    QString errorFile; ///< TORCHELASTIC_ERROR_FILE: where a failing worker says why
    QStringList glooInterfaces; ///< GLOO_SOCKET_IFNAME, comma-separated
    /// c10d's timeout for the rendezvous and every collective: a rank that dies or hangs ends
    /// the others with an error after at most this long.
    int timeoutSeconds = 300;

    /// Whether this process is one of several (a world of one trains as without torchrun).
    bool active() const { return worldSize > 1; }

    /// Reads the environment. nullopt when it holds no torchrun variables; an error naming the
    /// variable when some are set but one is missing or malformed.
    static Result<std::optional<DistEnv>> fromEnvironment(const QProcessEnvironment &environment);
};

// The sampler of a rank's training samples, distributedSamplerIndices(), is the loader's
// (transforms/batchloader.h).

/// The samples rank `rank` evaluates: positions rank, rank + worldSize, … (no padding, so that
/// no image counts twice in the gathered validation).
std::vector<int> evaluationShard(qsizetype n, int rank, int worldSize);

/// DDP's c10d::compute_bucket_assignment_by_size for tensors of one dtype and device: the
/// tensors taken in `order` (indices into `bytes`), a bucket closed as soon as its size reaches
/// its limit (the tensor that reached it included), the limits used in turn and the last one
/// kept for the rest. DDP's defaults are {1 MiB, 25 MiB} after the first step.
std::vector<std::vector<int>> bucketAssignmentBySize(const std::vector<qint64> &bytes,
                                                     const std::vector<qint64> &limits,
                                                     const std::vector<int> &order);

/// Writes `message` where torchrun's agent looks for a failed worker's reason
/// (TORCHELASTIC_ERROR_FILE, as torch.distributed.elastic's error handler writes it), so that
/// torchrun's summary shows it as the root cause. Nothing without a file.
void writeElasticError(const QString &errorFile, const QString &message);

} // namespace ifs
