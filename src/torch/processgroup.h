#pragma once

// The process group of a data-parallel run: c10d's TCPStore rendezvous and ProcessGroupGloo (or
// ProcessGroupNCCL in a CUDA build of libtorch), as torch.distributed.init_process_group("gloo",
// "env://") makes them, and DistributedDataParallel's gradient averaging in its buckets.
// Only processgroup.cpp includes c10d.

#include "base/result.h"
#include "training/distributed.h"
#include "training/evaluation.h"
#include "transforms/batchloader.h"

#include <QByteArray>
#include <QJsonObject>
#include <QString>

#include <functional>
#include <memory>
#include <vector>

namespace ifs::tm {

/// One rank's membership in the run's process group. Every call is a collective: each rank
/// makes the same calls in the same order. A rank that died, or one that does not answer
/// within the timeout, turns the call into an error that names what was being exchanged.
class DistributedGroup
{
public:
    /// Connects to the store at MASTER_ADDR:MASTER_PORT (rank 0 serves it unless torchrun's
    /// agent does) and builds the process group for tensors on `device`; waits for every rank.
    static Result<std::unique_ptr<DistributedGroup>> connect(const DistEnv &env,
                                                             const torch::Device &device);
    ~DistributedGroup();
    DistributedGroup(const DistributedGroup &) = delete;
    DistributedGroup &operator=(const DistributedGroup &) = delete;

    int rank() const;
    int size() const;
    /// "Gloo over lo", "NCCL": for the run's start line.
    QString backendDescription() const;

    /// Rank 0's values into every rank's tensors, in place (c10d::broadcast_coalesced in
    /// buffers of 250 MiB, as DDP syncs module states). `what` names them in an error.
    Status broadcast(const std::vector<torch::Tensor> &tensors, const QString &what);
    /// The sum over ranks of each tensor, in place.
    Status allreduceSum(const std::vector<torch::Tensor> &tensors, const QString &what);
    /// The sum over ranks of each value (float64).
    Result<std::vector<double>> sumOverRanks(const std::vector<double> &values,
                                             const QString &what);
    /// Every rank's bytes, by rank.
    Result<std::vector<QByteArray>> allgatherBytes(const QByteArray &mine, const QString &what);

private:
    DistributedGroup();
    Status run(const QString &what, const std::function<void()> &collective);

    struct Impl;
    std::unique_ptr<Impl> d;
};

/// The module's buffers (BatchNorm's running statistics and counts) in named_buffers() order:
/// what DDP broadcasts from rank 0 before each training forward.
std::vector<torch::Tensor> bufferTensors(torch::nn::Module &module);

/// Refused unless every rank holds the same `settings` as rank 0: the error names the first
/// key that differs and both values ("rank 1's lr is 0.01, rank 0's is 0.1").
Status checkSameSettings(DistributedGroup &group, const QJsonObject &settings);

/// Every rank's evaluation of its share of `samples` (`shard`: the positions in `samples` of
/// the ones `local` evaluated), put together on every rank in the samples' order, with the
/// summary computed over all of them.
Result<Evaluation> gatherEvaluation(DistributedGroup &group, const Evaluation &local,
                                    const std::vector<int> &shard,
                                    const std::vector<LoaderSample> &samples);

/// DistributedDataParallel's gradient averaging with its defaults (no comm hook,
/// find_unused_parameters False): after backward(), each gradient times 1 / world size is
/// copied into a flat bucket, every bucket is all-reduced (sum) in order, and the sums go back
/// into the gradients. The first step uses one bucket of all parameters in their order; it
/// records the order in which the gradients became ready, and from the second step the buckets
/// are those of DDP's rebuild: rank 0's ready order cut at 1 MiB, then every 25 MiB.
class GradientReducer
{
public:
    /// `params`: the parameters that train, in `parameters()` order.
    GradientReducer(DistributedGroup &group, std::vector<torch::Tensor> params);
    ~GradientReducer();
    GradientReducer(const GradientReducer &) = delete;
    GradientReducer &operator=(const GradientReducer &) = delete;

    /// Averages the gradients over the ranks.
    Status reduce();
    /// The buckets in use (indices into the parameters), for tests and the log.
    std::vector<std::vector<int>> buckets() const;

private:
    Status rebuildBuckets();
    void setBuckets(std::vector<std::vector<int>> buckets);

    DistributedGroup &m_group;
    std::vector<torch::Tensor> m_params;
    std::vector<std::vector<int>> m_buckets;
    std::vector<torch::Tensor> m_flat; ///< per bucket
    std::vector<std::vector<torch::Tensor>> m_views; ///< per bucket, per parameter
    std::shared_ptr<std::vector<int>> m_readyOrder; ///< filled by the hooks in the first step
    std::vector<unsigned> m_hooks; ///< the hooks' handles, per parameter
    bool m_rebuilt = false;
};

} // namespace ifs::tm
