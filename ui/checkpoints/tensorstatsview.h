#pragma once

#include "checkpoints/tensorstatsjob.h"

#include <QWidget>

class QLabel;

namespace ifs {

class HistogramWidget;

/// Statistics of the selected tensor: min, max, mean, std, NaN/Inf/zero counts and a histogram.
class TensorStatsView : public QWidget
{
    Q_OBJECT

public:
    explicit TensorStatsView(QWidget *parent = nullptr);

    /// Shows "Computing…" for `key` until setStats() arrives.
    void setPending(const QString &key, const QString &description);
    void setStats(const TensorStats &stats);
    /// Shows `text` instead of statistics (nothing selected, not a tensor).
    void setMessage(const QString &text);
    const TensorStats &stats() const { return m_stats; }

private:
    QLabel *m_title;
    QLabel *m_values;
    HistogramWidget *m_histogram;
    TensorStats m_stats;
};

} // namespace ifs
