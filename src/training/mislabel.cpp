// Ranking images by how much a trained model doubts their labels. See mislabel.h.

#include "training/mislabel.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ifs {

QList<MislabelCandidate> mislabelCandidates(const Evaluation &evaluation, const QString &split)
{
    QList<MislabelCandidate> out;
    out.reserve(evaluation.predictions.size());
    for (const SamplePrediction &p : evaluation.predictions) {
        MislabelCandidate c;
        c.path = p.path;
        c.split = split;
        c.label = p.label;
        c.predicted = p.predicted;
        c.selfConfidence = p.labelProbability;
        c.predictedProbability = p.confidence;
        c.loss = p.loss;
        c.margin = p.correct() ? p.labelProbability - (1.f - p.labelProbability)
                               : p.labelProbability - p.confidence;
        out.append(c);
    }
    return out;
}

void rankMislabelCandidates(QList<MislabelCandidate> &candidates, MislabelRanking ranking)
{
    auto key = [ranking](const MislabelCandidate &c) {
        switch (ranking) {
        case MislabelRanking::Loss:
            return std::isfinite(c.loss) ? -double(c.loss) : -std::numeric_limits<double>::max();
        case MislabelRanking::NormalizedMargin:
            return double(c.margin);
        case MislabelRanking::SelfConfidence:
            break;
        }
        return double(c.selfConfidence);
    };
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](const MislabelCandidate &a, const MislabelCandidate &b) {
                         const double ka = key(a), kb = key(b);
                         return ka != kb ? ka < kb : a.path < b.path;
                     });
}

double precisionAtK(const QList<MislabelCandidate> &ranked, const QSet<QString> &mislabelled,
                    qsizetype k)
{
    const qsizetype n = std::min(k, ranked.size());
    if (n <= 0)
        return 0.0;
    qsizetype hits = 0;
    for (qsizetype i = 0; i < n; ++i)
        hits += mislabelled.contains(ranked[i].path) ? 1 : 0;
    return double(hits) / double(k);
}

} // namespace ifs
