#pragma once

#include "transforms/transformadvice.h"

#include <QList>
#include <QWidget>

class QLabel;
class QPushButton;
class QVBoxLayout;

namespace ifs {

/// The findings of reviewPipeline() for the Train and Val pipelines: one row each with a
/// severity icon, the pipeline and step, the message, and a Fix button when there is a fix.
class AdvicePanel : public QWidget
{
    Q_OBJECT

public:
    explicit AdvicePanel(QWidget *parent = nullptr);

    void setAdvice(const QList<PipelineAdvice> &train, const QList<PipelineAdvice> &val);
    void clear();

    int count() const { return int(m_rows.size()); }
    /// Row i's message (as shown, without the pipeline prefix) and its Fix button (nullptr when
    /// it has no fix).
    QString message(int row) const;
    QPushButton *fixButton(int row) const;
    /// Pipeline (PipelineRole) of row i.
    PipelineRole role(int row) const;

Q_SIGNALS:
    /// The Fix button of a finding was pressed: apply `fixed` to that pipeline.
    void fixRequested(ifs::PipelineRole role, const ifs::TransformPipeline &fixed);
    /// A finding was clicked: show its step (-1: the whole pipeline).
    void stepActivated(ifs::PipelineRole role, int step);

private:
    struct Row
    {
        PipelineRole role;
        PipelineAdvice advice;
        QWidget *widget = nullptr;
        QPushButton *fix = nullptr;
    };
    void addRow(PipelineRole role, const PipelineAdvice &advice);

    QLabel *m_title;
    QLabel *m_empty;
    QWidget *m_rowsHost;
    QVBoxLayout *m_rowsLayout;
    QList<Row> m_rows;
};

} // namespace ifs
