#pragma once

#include "checkpoint/checkpointsummary.h"

#include <QWidget>

namespace ifs {

/// A small painted histogram of a tensor's finite values.
class HistogramWidget : public QWidget
{
    Q_OBJECT

public:
    explicit HistogramWidget(QWidget *parent = nullptr);
    void setStats(const ckpt::TensorStats &stats);
    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void paintEvent(QPaintEvent *event) override;

private:
    ckpt::TensorStats m_stats;
};

} // namespace ifs
