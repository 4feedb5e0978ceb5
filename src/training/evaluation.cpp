// The torch-free half of evaluation.h: summaries and reports of predictions.

#include "training/evaluation.h"

#include <algorithm>

namespace ifs {

qint64 Evaluation::count(int trueClass, int predictedClass) const
{
    const qsizetype n = classes.size();
    if (trueClass < 0 || predictedClass < 0 || trueClass >= n || predictedClass >= n
        || confusion.size() != size_t(n * n))
        return 0;
    return confusion[size_t(trueClass * n + predictedClass)];
}

QList<SamplePrediction> Evaluation::cell(int trueClass, int predictedClass) const
{
    QList<SamplePrediction> out;
    for (const SamplePrediction &p : predictions) {
        if (p.label == trueClass && p.predicted == predictedClass)
            out.append(p);
    }
    return out;
}

QList<SamplePrediction> Evaluation::misclassified(Ranking ranking) const
{
    QList<SamplePrediction> wrong;
    for (const SamplePrediction &p : predictions) {
        if (!p.correct())
            wrong.append(p);
    }
    std::stable_sort(wrong.begin(), wrong.end(), [ranking](const auto &a, const auto &b) {
        switch (ranking) {
        case Ranking::HighestLoss:
            return a.loss > b.loss;
        case Ranking::MostConfident:
            return a.confidence > b.confidence;
        case Ranking::LeastConfident:
            return a.confidence < b.confidence;
        }
        return false;
    });
    return wrong;
}

void Evaluation::computeSummary()
{
    const qsizetype n = classes.size();
    confusion.assign(size_t(n * n), 0);
    double lossSum = 0.0;
    qint64 correct = 0;
    for (const SamplePrediction &p : predictions) {
        if (p.label >= 0 && p.label < n && p.predicted >= 0 && p.predicted < n)
            ++confusion[size_t(p.label * n + p.predicted)];
        correct += p.correct() ? 1 : 0;
        lossSum += p.loss;
    }
    const qsizetype total = predictions.size();
    accuracy = total ? double(correct) / double(total) : 0.0;
    loss = total ? lossSum / double(total) : 0.0;
    perClass.clear();
    double f1Sum = 0.0;
    for (qsizetype c = 0; c < n; ++c) {
        ClassMetrics m;
        const qint64 truePositive = confusion[size_t(c * n + c)];
        for (qsizetype k = 0; k < n; ++k) {
            m.support += confusion[size_t(c * n + k)];
            m.predictedCount += confusion[size_t(k * n + c)];
        }
        m.precision = m.predictedCount ? double(truePositive) / double(m.predictedCount) : 0.0;
        m.recall = m.support ? double(truePositive) / double(m.support) : 0.0;
        m.f1 = m.precision + m.recall > 0.0
            ? 2.0 * m.precision * m.recall / (m.precision + m.recall)
            : 0.0;
        f1Sum += m.f1;
        perClass.append(m);
    }
    macroF1 = n ? f1Sum / double(n) : 0.0;
}

QString Evaluation::classReportText() const
{
    qsizetype width = 5;
    for (const QString &c : classes)
        width = std::max(width, c.size());
    QString out = QStringLiteral("%1  precision  recall      f1  support\n")
                      .arg(QStringLiteral("class"), -int(width));
    for (qsizetype c = 0; c < classes.size() && c < perClass.size(); ++c) {
        const ClassMetrics &m = perClass[c];
        out += QStringLiteral("%1  %2  %3  %4  %5\n")
                   .arg(classes[c], -int(width))
                   .arg(m.precision * 100.0, 9, 'f', 2)
                   .arg(m.recall * 100.0, 6, 'f', 2)
                   .arg(m.f1 * 100.0, 6, 'f', 2)
                   .arg(m.support, 7);
    }
    out += QStringLiteral("\n%1  accuracy %2%  macro F1 %3%  loss %4  (%5 images)\n")
               .arg(QString(), -int(width))
               .arg(accuracy * 100.0, 0, 'f', 2)
               .arg(macroF1 * 100.0, 0, 'f', 2)
               .arg(loss, 0, 'f', 4)
               .arg(predictions.size());
    return out;
}

QString Evaluation::confusionText() const
{
    const qsizetype n = classes.size();
    qint64 largest = 1;
    for (qint64 v : confusion)
        largest = std::max(largest, v);
    const int cellWidth = std::max(4, int(QString::number(largest).size()) + 1);
    qsizetype nameWidth = 4;
    for (const QString &c : classes)
        nameWidth = std::max(nameWidth, c.size());
    QString out = QStringLiteral("Confusion matrix (rows: true class, columns: predicted; "
                                 "columns numbered as the rows)\n");
    out += QString(int(nameWidth) + 4, u' ');
    for (qsizetype c = 0; c < n; ++c)
        out += QStringLiteral("%1").arg(c, cellWidth);
    out += u'\n';
    for (qsizetype r = 0; r < n; ++r) {
        out += QStringLiteral("%1 %2").arg(r, 2).arg(classes[r], -int(nameWidth)) + u' ';
        for (qsizetype c = 0; c < n; ++c)
            out += QStringLiteral("%1").arg(count(int(r), int(c)), cellWidth);
        out += u'\n';
    }
    return out;
}

} // namespace ifs
