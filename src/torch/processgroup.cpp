#include "torch/processgroup.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <QDataStream>
#include <QJsonArray>
#include <QJsonDocument>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

namespace ifs::tm {

namespace {

/// DDP's buffer for syncing module states (broadcast_bucket_size, 250 MiB).
constexpr qint64 kBroadcastBytes = 250LL * 1024 * 1024;
/// DDP's bucket limits after the first step: dist._DEFAULT_FIRST_BUCKET_BYTES, bucket_cap_mb.
constexpr qint64 kFirstBucketBytes = 1024 * 1024;
constexpr qint64 kBucketBytes = 25LL * 1024 * 1024;

/// The first line of a c10d or Gloo error ("[../gloo/transport/tcp/pair.cc:598] Connection
/// closed by peer [127.0.0.1]:13232"), without libtorch's C++ stack trace.
QString firstLine(const char *what)
{
    const QString text = QString::fromLocal8Bit(what).trimmed();
    return text.section(u'\n', 0, 0);
}

} // namespace

struct DistributedGroup::Impl
{
    DistEnv env;
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroup> group;
    QString backend;
    /// Where the group's own exchanges (figures, bytes) live: the CPU for Gloo, the rank's GPU
    /// for NCCL, which moves only GPU tensors.
    torch::Device exchange{torch::kCPU};
};

DistributedGroup::DistributedGroup()
    : d(std::make_unique<Impl>())
{ }

DistributedGroup::~DistributedGroup() = default;

Result<std::unique_ptr<DistributedGroup>> DistributedGroup::connect(const DistEnv &env,
                                                                    const torch::Device &device)
{
    std::unique_ptr<DistributedGroup> self(new DistributedGroup);
    Impl &d = *self->d;
    d.env = env;
    const std::chrono::milliseconds timeout = std::chrono::seconds(env.timeoutSeconds);
    const QString where = QStringLiteral("%1:%2").arg(env.masterAddr).arg(env.masterPort);
    try {
        // As Python's env:// rendezvous: with torchrun's agent store every rank is a client
        // and its keys go under the attempt's prefix; otherwise rank 0 serves the store.
        c10d::TCPStoreOptions options;
        options.port = env.masterPort;
        options.isServer = !env.agentStore && env.rank == 0;
        options.numWorkers = size_t(env.worldSize);
        options.waitWorkers = true;
        options.timeout = timeout;
        options.multiTenant = !env.agentStore;
        c10::intrusive_ptr<c10d::Store> store
            = c10::make_intrusive<c10d::TCPStore>(env.masterAddr.toStdString(), options);
        if (env.agentStore)
            store = c10::make_intrusive<c10d::PrefixStore>(
                "/worker/attempt_" + std::to_string(env.restartCount), store);
        store->setTimeout(timeout);
        // init_process_group's layering: the default group's prefix, then the group's name.
        d.store = c10::make_intrusive<c10d::PrefixStore>("default_pg", store);
        const auto groupStore = c10::make_intrusive<c10d::PrefixStore>("0", d.store);
#ifdef USE_C10D_NCCL
        if (device.is_cuda()) {
            // The rank's GPU is the current one (as torch.cuda.set_device(LOCAL_RANK)), and a
            // lost peer makes wait() throw instead of the watchdog aborting the process.
            c10::cuda::set_device(device.index());
            qputenv("NCCL_BLOCKING_WAIT",
                    qgetenv("NCCL_BLOCKING_WAIT").isEmpty() ? QByteArray("1")
                                                            : qgetenv("NCCL_BLOCKING_WAIT"));
            auto nccl = c10d::ProcessGroupNCCL::Options::create();
            nccl->timeout = timeout;
            d.group = c10::make_intrusive<c10d::ProcessGroupNCCL>(groupStore, env.rank,
                                                                  env.worldSize, nccl);
            d.backend = QStringLiteral("NCCL");
            d.exchange = device;
        }
#endif
        if (!d.group) {
            auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
            // As PyTorch's binding does: a device per GLOO_SOCKET_IFNAME interface, else the
            // one the host name resolves to (loopback when it resolves to nothing better).
            for (const QString &name : env.glooInterfaces)
                gloo->devices.push_back(
                    c10d::ProcessGroupGloo::createDeviceForInterface(name.toStdString()));
            if (gloo->devices.empty())
                gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
            gloo->threads = int(gloo->devices.size()) * 2;
            d.group = c10::make_intrusive<c10d::ProcessGroupGloo>(groupStore, env.rank,
                                                                  env.worldSize, gloo);
            d.backend = env.glooInterfaces.isEmpty()
                ? QStringLiteral("Gloo")
                : QStringLiteral("Gloo over %1").arg(env.glooInterfaces.join(u','));
        }
    } catch (const std::exception &e) {
        return Error{QStringLiteral("rank %1 could not join the %2 processes at %3 (waiting up "
                                    "to %4 s): %5. Check that every rank was started (torchrun "
                                    "--nproc_per_node, --nnodes), that MASTER_ADDR and "
                                    "MASTER_PORT reach rank 0's machine and that "
                                    "GLOO_SOCKET_IFNAME names a working interface")
                         .arg(env.rank)
                         .arg(env.worldSize)
                         .arg(where)
                         .arg(env.timeoutSeconds)
                         .arg(firstLine(e.what()))};
    }
    return self;
}

int DistributedGroup::rank() const
{
    return d->env.rank;
}

int DistributedGroup::size() const
{
    return d->env.worldSize;
}

QString DistributedGroup::backendDescription() const
{
    return d->backend;
}

Status DistributedGroup::run(const QString &what, const std::function<void()> &collective)
{
    try {
        torch::NoGradGuard noGrad;
        collective();
    } catch (const std::exception &e) {
        const QString reason = firstLine(e.what());
        const bool timedOut = reason.contains(QStringLiteral("Timed out"), Qt::CaseInsensitive)
            || reason.contains(QStringLiteral("timeout"), Qt::CaseInsensitive);
        return Error{QStringLiteral("rank %1 lost the other processes during %2: %3. %4")
                         .arg(d->env.rank)
                         .arg(what, reason,
                              timedOut ? QStringLiteral("A rank did not answer within %1 s "
                                                        "(--dist-timeout); see its log.")
                                             .arg(d->env.timeoutSeconds)
                                       : QStringLiteral("Another rank stopped or failed; its "
                                                        "log says why."))};
    }
    return success();
}

Status DistributedGroup::broadcast(const std::vector<torch::Tensor> &tensors, const QString &what)
{
    if (tensors.empty())
        return success();
    return run(what,
               [&] { c10d::broadcast_coalesced(d->group, tensors, size_t(kBroadcastBytes), 0); });
}

Status DistributedGroup::allreduceSum(const std::vector<torch::Tensor> &tensors,
                                      const QString &what)
{
    return run(what, [&] {
        for (const torch::Tensor &t : tensors) {
            std::vector<torch::Tensor> one{t};
            d->group->allreduce(one)->wait();
        }
    });
}

Result<std::vector<double>> DistributedGroup::sumOverRanks(const std::vector<double> &values,
                                                           const QString &what)
{
    torch::Tensor t = torch::tensor(values, torch::kDouble).to(d->exchange);
    if (Status ok = allreduceSum({t}, what); !ok)
        return ok.error();
    t = t.cpu();
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + values.size());
}

Result<std::vector<QByteArray>> DistributedGroup::allgatherBytes(const QByteArray &mine,
                                                                 const QString &what)
{
    const int w = size();
    std::vector<torch::Tensor> lengths(static_cast<size_t>(w));
    std::vector<torch::Tensor> chunks(static_cast<size_t>(w));
    const torch::TensorOptions exchangeOptions = torch::TensorOptions().device(d->exchange);
    // The lengths first, then every rank's bytes padded to the longest.
    Status ok = run(what, [&] {
        std::vector<std::vector<torch::Tensor>> out(1);
        for (auto &t : lengths)
            out[0].push_back(t = torch::zeros({1}, exchangeOptions.dtype(torch::kLong)));
        std::vector<torch::Tensor> in{
            torch::full({1}, int64_t(mine.size()), exchangeOptions.dtype(torch::kLong))};
        d->group->allgather(out, in)->wait();
        qint64 longest = 1;
        for (const torch::Tensor &t : lengths)
            longest = std::max<qint64>(longest, t.item<int64_t>());
        torch::Tensor padded = torch::zeros({longest}, torch::kByte);
        std::memcpy(padded.data_ptr(), mine.constData(), size_t(mine.size()));
        padded = padded.to(d->exchange);
        std::vector<std::vector<torch::Tensor>> gathered(1);
        for (auto &t : chunks)
            gathered[0].push_back(t = torch::zeros({longest}, exchangeOptions.dtype(torch::kByte)));
        std::vector<torch::Tensor> input{padded};
        d->group->allgather(gathered, input)->wait();
    });
    if (!ok)
        return ok.error();
    std::vector<QByteArray> result;
    for (auto &t : chunks)
        t = t.cpu();
    for (auto &t : lengths)
        t = t.cpu();
    for (int r = 0; r < w; ++r)
        result.emplace_back(static_cast<const char *>(chunks[size_t(r)].data_ptr()),
                            qsizetype(lengths[size_t(r)].item<int64_t>()));
    return result;
}

// ------------------------------------------------------------------------------------------------

std::vector<torch::Tensor> bufferTensors(torch::nn::Module &module)
{
    std::vector<torch::Tensor> buffers;
    for (const auto &item : module.named_buffers(/*recurse=*/true))
        buffers.push_back(item.value());
    return buffers;
}

Status checkSameSettings(DistributedGroup &group, const QJsonObject &settings)
{
    auto all = group.allgatherBytes(QJsonDocument(settings).toJson(QJsonDocument::Compact),
                                    QStringLiteral("the comparison of the ranks' settings"));
    if (!all)
        return all.error();
    const QJsonObject first = QJsonDocument::fromJson(all->front()).object();
    for (int r = 1; r < int(all->size()); ++r) {
        const QJsonObject other = QJsonDocument::fromJson(all->at(size_t(r))).object();
        QStringList keys = first.keys() + other.keys();
        keys.removeDuplicates();
        for (const QString &key : keys) {
            if (first.value(key) == other.value(key))
                continue;
            const auto text = [](const QJsonValue &v) {
                if (v.isUndefined())
                    return QStringLiteral("not set");
                const QJsonDocument doc = v.isObject() ? QJsonDocument(v.toObject())
                    : v.isArray()                      ? QJsonDocument(v.toArray())
                                                       : QJsonDocument(QJsonArray{v});
                QString s = QString::fromUtf8(doc.toJson(QJsonDocument::Compact));
                if (!v.isObject() && !v.isArray())
                    s = s.mid(1, s.size() - 2);
                return s.size() > 120 ? s.left(117) + QStringLiteral("…") : s;
            };
            return Error{QStringLiteral("the processes do not run the same training: rank %1's "
                                        "%2 is %3, rank 0's is %4. Start every rank with the "
                                        "same arguments and the same data")
                             .arg(r)
                             .arg(key, text(other.value(key)), text(first.value(key)))};
        }
    }
    return success();
}

Result<Evaluation> gatherEvaluation(DistributedGroup &group, const Evaluation &local,
                                    const std::vector<int> &shard,
                                    const std::vector<LoaderSample> &samples)
{
    QByteArray mine;
    {
        QDataStream out(&mine, QIODevice::WriteOnly);
        out << qint32(local.predictions.size());
        for (const SamplePrediction &p : local.predictions)
            out << qint32(shard[size_t(p.sampleIndex)]) << qint32(p.label) << qint32(p.predicted)
                << p.confidence << p.labelProbability << p.loss;
        out << qint32(local.failures.size());
        for (const LoaderFailure &f : local.failures)
            out << f.path << f.message;
    }
    auto all = group.allgatherBytes(mine, QStringLiteral("the validation results' gathering"));
    if (!all)
        return all.error();
    Evaluation evaluation;
    evaluation.classes = local.classes;
    for (const QByteArray &bytes : all.value()) {
        QDataStream in(bytes);
        qint32 count = 0;
        in >> count;
        for (qint32 i = 0; i < count; ++i) {
            SamplePrediction p;
            qint32 index = 0, label = 0, predicted = 0;
            in >> index >> label >> predicted >> p.confidence >> p.labelProbability >> p.loss;
            p.sampleIndex = index;
            p.label = label;
            p.predicted = predicted;
            p.path = samples[size_t(index)].path;
            evaluation.predictions.append(p);
        }
        in >> count;
        for (qint32 i = 0; i < count; ++i) {
            LoaderFailure f;
            in >> f.path >> f.message;
            evaluation.failures.append(f);
        }
    }
    std::sort(evaluation.predictions.begin(), evaluation.predictions.end(),
              [](const SamplePrediction &a, const SamplePrediction &b) {
                  return a.sampleIndex < b.sampleIndex;
              });
    evaluation.computeSummary();
    return evaluation;
}

GradientReducer::GradientReducer(DistributedGroup &group, std::vector<torch::Tensor> params)
    : m_group(group)
    , m_params(std::move(params))
    , m_readyOrder(std::make_shared<std::vector<int>>())
{
    // The first step: one bucket of every parameter in order (DDP's limit sys.maxsize before
    // its rebuild), and hooks that note the order in which the gradients become ready.
    std::vector<int> all(m_params.size());
    for (size_t i = 0; i < all.size(); ++i)
        all[i] = int(i);
    setBuckets({all});
    for (size_t i = 0; i < m_params.size(); ++i) {
        const int index = int(i);
        std::shared_ptr<std::vector<int>> order = m_readyOrder;
        m_hooks.push_back(m_params[i].register_hook(
            [order, index](const torch::Tensor &) { order->push_back(index); }));
    }
}

GradientReducer::~GradientReducer()
{
    if (!m_rebuilt) {
        for (size_t i = 0; i < m_hooks.size(); ++i)
            m_params[i].remove_hook(m_hooks[i]);
    }
}

void GradientReducer::setBuckets(std::vector<std::vector<int>> buckets)
{
    m_buckets = std::move(buckets);
    m_flat.clear();
    m_views.clear();
    for (const std::vector<int> &bucket : m_buckets) {
        int64_t numel = 0;
        for (const int i : bucket)
            numel += m_params[size_t(i)].numel();
        const torch::Tensor &first = m_params[size_t(bucket.front())];
        torch::Tensor flat = torch::zeros({numel}, first.options().requires_grad(false));
        std::vector<torch::Tensor> views;
        int64_t offset = 0;
        for (const int i : bucket) {
            const torch::Tensor &p = m_params[size_t(i)];
            // A view with the parameter's strides where it is dense (channels_last), as DDP's
            // bucket views are.
            const bool dense = p.is_non_overlapping_and_dense();
            views.push_back(dense ? flat.as_strided(p.sizes(), p.strides(), offset)
                                  : flat.narrow(0, offset, p.numel()).view(p.sizes()));
            offset += p.numel();
        }
        m_flat.push_back(std::move(flat));
        m_views.push_back(std::move(views));
    }
}

Status GradientReducer::reduce()
{
    torch::NoGradGuard noGrad;
    const torch::Tensor scale = torch::scalar_tensor(1.0 / double(m_group.size()), torch::kDouble);
    for (size_t b = 0; b < m_buckets.size(); ++b) {
        for (size_t k = 0; k < m_buckets[b].size(); ++k) {
            const torch::Tensor &grad = m_params[size_t(m_buckets[b][k])].grad();
            torch::Tensor &view = m_views[b][k];
            if (grad.defined())
                at::mul_out(view, grad, scale);
            else
                view.zero_();
        }
    }
    if (Status ok = m_group.allreduceSum(m_flat, QStringLiteral("the gradients' all-reduce")); !ok)
        return ok;
    for (size_t b = 0; b < m_buckets.size(); ++b) {
        for (size_t k = 0; k < m_buckets[b].size(); ++k) {
            torch::Tensor &p = m_params[size_t(m_buckets[b][k])];
            if (p.grad().defined())
                p.mutable_grad().copy_(m_views[b][k]);
            else
                p.mutable_grad() = m_views[b][k].clone();
        }
    }
    return m_rebuilt ? success() : rebuildBuckets();
}

/// After the first step, as DDP's _rebuild_buckets(): rank 0's ready order (every rank takes
/// the same buckets), the parameters that had no gradient appended, cut by size.
Status GradientReducer::rebuildBuckets()
{
    for (size_t i = 0; i < m_hooks.size(); ++i)
        m_params[i].remove_hook(m_hooks[i]);
    m_rebuilt = true;
    std::vector<int> order = *m_readyOrder;
    std::vector<bool> seen(m_params.size(), false);
    std::vector<int> unique;
    for (const int i : order) {
        if (!seen[size_t(i)])
            unique.push_back(i);
        seen[size_t(i)] = true;
    }
    for (size_t i = 0; i < m_params.size(); ++i) {
        if (!seen[i])
            unique.push_back(int(i));
    }
    // On the parameters' device: NCCL moves only GPU tensors.
    torch::Tensor shared
        = torch::tensor(std::vector<int64_t>(unique.begin(), unique.end()), torch::kLong)
              .to(m_params.front().device());
    if (Status ok = m_group.broadcast({shared}, QStringLiteral("the gradients' bucket order")); !ok)
        return ok;
    shared = shared.cpu();
    std::vector<int> rankZero(size_t(shared.numel()));
    for (size_t i = 0; i < rankZero.size(); ++i)
        rankZero[i] = int(shared.data_ptr<int64_t>()[i]);
    std::vector<qint64> bytes;
    for (const torch::Tensor &p : m_params)
        bytes.push_back(qint64(p.numel()) * qint64(p.element_size()));
    setBuckets(bucketAssignmentBySize(bytes, {kFirstBucketBytes, kBucketBytes}, rankZero));
    return success();
}

std::vector<std::vector<int>> GradientReducer::buckets() const
{
    return m_buckets;
}

} // namespace ifs::tm
