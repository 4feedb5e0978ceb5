// The LR finder's curve: fastai v2's schedule, smoothing, stop rule and suggestions
// (fastai/callback/schedule.py: SchedExp, LRFinder, steep, minimum, valley; fastai/learner.py:
// AvgSmoothLoss), with torch's float32 arithmetic where fastai computes on tensors, so that a
// Python reimplementation on the same losses gives the same numbers bit for bit
// (tests/tools/lrfind_oracle.py). The ramp itself runs in training.cpp (TrainingRun::findLr()).

#include "training/lrfinder.h"

#include <QJsonArray>
#include <QJsonObject>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ifs {

Status LrFindOptions::validate() const
{
    if (!(startLr > 0.0) || !std::isfinite(startLr))
        return Error{
            QStringLiteral("the start rate must be a number above 0, not %1").arg(startLr)};
    if (!(endLr > startLr) || !std::isfinite(endLr))
        return Error{QStringLiteral("the end rate (%1) must be above the start rate (%2)")
                         .arg(endLr)
                         .arg(startLr)};
    if (numIt < 1)
        return Error{QStringLiteral("the number of steps must be at least 1, not %1").arg(numIt)};
    if (!(beta >= 0.0 && beta < 1.0))
        return Error{QStringLiteral("the smoothing beta must be in [0, 1), not %1").arg(beta)};
    return success();
}

QString lrFindStopName(LrFindStop stop)
{
    switch (stop) {
    case LrFindStop::Completed:
        return QStringLiteral("completed");
    case LrFindStop::Diverged:
        return QStringLiteral("diverged");
    case LrFindStop::NotFinite:
        return QStringLiteral("not-finite");
    }
    return {};
}

// ------------------------------------------------------------------------------------------------
// LrFinderCurve

struct LrFinderCurve::Impl
{
    LrFindOptions options;
    int iterations = 6;
    QList<double> lrs, losses, smoothed;
    torch::Tensor val = torch::zeros({}, torch::kFloat); ///< AvgSmoothLoss.val
    int count = 0;
    float best = std::numeric_limits<float>::infinity();
    LrFindStop stop = LrFindStop::Completed;
};

LrFinderCurve::LrFinderCurve(const LrFindOptions &options)
    : d(std::make_unique<Impl>())
{
    d->options = options;
    d->iterations = std::max(options.numIt, 6);
}

LrFinderCurve::~LrFinderCurve() = default;
LrFinderCurve::LrFinderCurve(LrFinderCurve &&) noexcept = default;
LrFinderCurve &LrFinderCurve::operator=(LrFinderCurve &&) noexcept = default;

int LrFinderCurve::iterations() const
{
    return d->iterations;
}

double LrFinderCurve::rate(int iteration) const
{
    // SchedExp(start, end)(pos) with pos = train_iter / num_it, Python floats throughout.
    const double start = d->options.startLr, end = d->options.endLr;
    return start * std::pow(end / start, double(iteration) / double(d->iterations));
}

bool LrFinderCurve::record(double lr, float loss)
{
    // AvgSmoothLoss.accumulate(): val = torch.lerp(loss, val, beta); value = val / (1 - beta**n).
    ++d->count;
    d->val = torch::lerp(torch::full({}, loss, torch::kFloat), d->val, d->options.beta);
    const float value
        = (d->val / (1.0 - std::pow(d->options.beta, double(d->count)))).item<float>();
    d->lrs.append(lr);
    d->losses.append(double(loss));
    d->smoothed.append(double(value));
    // LRFinder.after_batch(): the best so far, then stop_div on a float32 tensor (4 × best).
    if (value < d->best)
        d->best = value;
    if (d->options.stopDiv && value > 4.0f * d->best) {
        d->stop = LrFindStop::Diverged;
        return false;
    }
    if (std::isnan(value)) {
        // fastai runs on to num_it (a NaN compares false); every later value is NaN too and the
        // suggestions end before the first NaN, so stopping here changes none of them.
        d->stop = LrFindStop::NotFinite;
        return false;
    }
    return d->smoothed.size() < d->iterations;
}

LrFindStop LrFinderCurve::stop() const
{
    return d->stop;
}

const QList<double> &LrFinderCurve::lrs() const
{
    return d->lrs;
}

const QList<double> &LrFinderCurve::losses() const
{
    return d->losses;
}

const QList<double> &LrFinderCurve::smoothed() const
{
    return d->smoothed;
}

namespace {

/// fastai's valley(): the longest decreasing run of the curve (an O(n²) longest decreasing
/// subsequence, as written there), and the point at 1/3 + 1/6 of it. Its index arithmetic may
/// give -1, which Python reads as the last point: so does this.
LrSuggestion valleySuggestion(const torch::Tensor &lrs, const torch::Tensor &losses)
{
    const int64_t n = losses.size(0);
    const float *loss = losses.data_ptr<float>();
    std::vector<int64_t> lds(size_t(n), 1);
    int64_t maxStart = 0, maxEnd = 0;
    for (int64_t i = 1; i < n; ++i) {
        for (int64_t j = 0; j < i; ++j) {
            if (loss[i] < loss[j] && lds[size_t(i)] < lds[size_t(j)] + 1)
                lds[size_t(i)] = lds[size_t(j)] + 1;
            if (lds[size_t(maxEnd)] < lds[size_t(i)]) {
                maxEnd = i;
                maxStart = maxEnd - lds[size_t(maxEnd)];
            }
        }
    }
    const double sections = double(maxEnd - maxStart) / 3.0;
    int64_t idx = maxStart + int64_t(sections) + int64_t(sections / 2.0);
    if (idx < 0)
        idx += n;
    const double lr = double(lrs[idx].item<float>());
    return {QStringLiteral("valley"), lr, lr, double(loss[idx])};
}

} // namespace

QList<LrSuggestion> LrFinderCurve::suggestions() const
{
    // lr_find(): tensor(recorder.lrs[num_it//10:-5]) and the same of the losses; a run stopped at
    // a NaN is cut as fastai's full-length NaN-tailed records would be.
    const qsizetype recorded = d->smoothed.size();
    const qsizetype length = d->stop == LrFindStop::NotFinite ? d->iterations : recorded;
    const qsizetype begin = std::min<qsizetype>(d->options.numIt / 10, recorded);
    qsizetype end = std::clamp<qsizetype>(length - 5, begin, recorded);
    for (qsizetype i = begin; i < end; ++i) {
        if (std::isnan(d->smoothed[i])) {
            end = i;
            break;
        }
    }
    if (end - begin < 2)
        return {};
    const std::vector<double> lrValues(d->lrs.begin() + begin, d->lrs.begin() + end);
    const std::vector<double> lossValues(d->smoothed.begin() + begin, d->smoothed.begin() + end);
    const torch::Tensor lrs = torch::tensor(lrValues, torch::kDouble).to(torch::kFloat);
    const torch::Tensor losses = torch::tensor(lossValues, torch::kDouble).to(torch::kFloat);

    QList<LrSuggestion> out;
    // steep(): the steepest descent per log-rate.
    const int64_t n = lrs.size(0);
    const torch::Tensor grads = (losses.slice(0, 1) - losses.slice(0, 0, n - 1))
        / (lrs.slice(0, 1).log() - lrs.slice(0, 0, n - 1).log());
    const int64_t steep = grads.argmin().item<int64_t>();
    const double steepLr = double(lrs[steep].item<float>());
    out.append({QStringLiteral("steep"), steepLr, steepLr, double(losses[steep].item<float>())});
    // minimum(): a tenth of the rate at the lowest loss.
    const int64_t minimum = losses.argmin().item<int64_t>();
    const double minimumLr = double(lrs[minimum].item<float>());
    out.append({QStringLiteral("minimum"), minimumLr / 10.0, minimumLr,
                double(losses[minimum].item<float>())});
    out.append(valleySuggestion(lrs, losses));
    return out;
}

// ------------------------------------------------------------------------------------------------
// Results

const LrSuggestion *LrFindResult::suggestion(const QString &name) const
{
    for (const LrSuggestion &s : suggestions) {
        if (s.name == name)
            return &s;
    }
    return nullptr;
}

namespace {

/// A JSON number, or null for NaN and the infinities (JSON has none).
QJsonValue jsonNumber(double v)
{
    return std::isfinite(v) ? QJsonValue(v) : QJsonValue();
}

QJsonArray jsonNumbers(const QList<double> &values)
{
    QJsonArray out;
    for (const double v : values)
        out.append(jsonNumber(v));
    return out;
}

} // namespace

QJsonObject lrFindResultJson(const LrFindResult &result)
{
    QJsonObject suggestions;
    for (const LrSuggestion &s : result.suggestions)
        suggestions.insert(s.name,
                           QJsonObject{{QStringLiteral("lr"), jsonNumber(s.lr)},
                                       {QStringLiteral("point_lr"), jsonNumber(s.pointLr)},
                                       {QStringLiteral("point_loss"), jsonNumber(s.pointLoss)}});
    return {
        {QStringLiteral("lrs"), jsonNumbers(result.lrs)},
        {QStringLiteral("losses"), jsonNumbers(result.losses)},
        {QStringLiteral("smoothed"), jsonNumbers(result.smoothed)},
        {QStringLiteral("suggestions"), suggestions},
        {QStringLiteral("stop"), lrFindStopName(result.stop)},
        {QStringLiteral("iterations"), result.iterations},
        {QStringLiteral("message"), result.stopMessage},
    };
}

} // namespace ifs
