#include "transforms/advicepanel.h"

#include "transforms/clickfilter.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>
#include <QStyle>
#include <QVBoxLayout>

namespace ifs {

namespace {

QString roleName(PipelineRole role)
{
    return role == PipelineRole::Train ? QObject::tr("Train") : QObject::tr("Val");
}

} // namespace

AdvicePanel::AdvicePanel(QWidget *parent)
    : QWidget(parent)
    , m_title(new QLabel(tr("Findings"), this))
    , m_empty(new QLabel(this))
    , m_rowsHost(new QWidget(this))
    , m_rowsLayout(new QVBoxLayout(m_rowsHost))
{
    setObjectName(QStringLiteral("advicePanel"));
    QFont bold = m_title->font();
    bold.setBold(true);
    m_title->setFont(bold);
    m_empty->setWordWrap(true);
    m_empty->setStyleSheet(QStringLiteral("color: palette(mid);"));
    m_rowsLayout->setContentsMargins(0, 0, 0, 0);
    m_rowsLayout->setSpacing(4);
    m_rowsLayout->addWidget(m_empty);
    m_rowsLayout->addStretch(1);

    auto *scroll = new QScrollArea(this);
    scroll->setWidget(m_rowsHost);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->setSpacing(4);
    layout->addWidget(m_title);
    layout->addWidget(scroll, 1);
    clear();
}

void AdvicePanel::clear()
{
    for (const Row &row : std::as_const(m_rows))
        row.widget->deleteLater();
    m_rows.clear();
    m_title->setText(tr("Findings"));
    m_empty->setText(tr("Findings about both pipelines show here: mistakes that would break "
                        "training or quietly make it worse."));
    m_empty->show();
}

void AdvicePanel::setAdvice(const QList<PipelineAdvice> &train, const QList<PipelineAdvice> &val)
{
    clear();
    // Errors first, then warnings, then notes; Train before Val within each.
    for (int severity = 2; severity >= 0; --severity) {
        for (const PipelineAdvice &a : train)
            if (int(a.severity) == severity)
                addRow(PipelineRole::Train, a);
        for (const PipelineAdvice &a : val)
            if (int(a.severity) == severity)
                addRow(PipelineRole::Val, a);
    }
    m_empty->setText(tr("No findings: both pipelines look right for this dataset."));
    m_empty->setVisible(m_rows.isEmpty());
    m_title->setText(m_rows.isEmpty() ? tr("Findings") : tr("Findings (%1)").arg(m_rows.size()));
}

void AdvicePanel::addRow(PipelineRole role, const PipelineAdvice &advice)
{
    auto *frame = new QFrame(m_rowsHost);
    frame->setObjectName(QStringLiteral("adviceRow"));
    frame->setFrameShape(QFrame::StyledPanel);
    QString colors = QStringLiteral("background: #e8f1fb; border: 1px solid #9ec3ea;");
    QStyle::StandardPixmap pixmap = QStyle::SP_MessageBoxInformation;
    if (advice.severity == PipelineAdvice::Severity::Warning) {
        colors = QStringLiteral("background: #fff6dd; border: 1px solid #e8c766;");
        pixmap = QStyle::SP_MessageBoxWarning;
    } else if (advice.severity == PipelineAdvice::Severity::Error) {
        colors = QStringLiteral("background: #fde7e7; border: 1px solid #e08a8a;");
        pixmap = QStyle::SP_MessageBoxCritical;
    }
    frame->setStyleSheet(QStringLiteral("QFrame#adviceRow { %1 border-radius: 4px; } "
                                        "QFrame#adviceRow QLabel { background: transparent; "
                                        "border: none; color: #222; }")
                             .arg(colors));
    auto *icon = new QLabel(frame);
    icon->setPixmap(style()->standardIcon(pixmap).pixmap(18, 18));
    QString where = roleName(role);
    if (advice.step >= 0)
        where += tr(" · step %1").arg(advice.step + 1);
    auto *text = new QLabel(
        QStringLiteral("<b>%1</b> — %2").arg(where.toHtmlEscaped(), advice.message.toHtmlEscaped()),
        frame);
    text->setObjectName(QStringLiteral("adviceText"));
    text->setWordWrap(true);
    text->setTextFormat(Qt::RichText);
    text->setMinimumWidth(120);
    auto *layout = new QHBoxLayout(frame);
    layout->setContentsMargins(6, 4, 6, 4);
    layout->addWidget(icon, 0, Qt::AlignTop);
    layout->addWidget(text, 1);
    Row row{role, advice, frame, nullptr};
    if (advice.fix) {
        row.fix = new QPushButton(tr("Fix"), frame);
        row.fix->setObjectName(QStringLiteral("adviceFix"));
        row.fix->setToolTip(advice.fixLabel.isEmpty() ? tr("Apply the suggested change")
                                                      : advice.fixLabel);
        const TransformPipeline fixed = *advice.fix;
        connect(row.fix, &QPushButton::clicked, this,
                [this, role, fixed] { Q_EMIT fixRequested(role, fixed); });
        layout->addWidget(row.fix, 0, Qt::AlignVCenter);
        if (!advice.fixLabel.isEmpty())
            text->setText(
                text->text()
                + QStringLiteral("<br><i>Fix: %1</i>").arg(advice.fixLabel.toHtmlEscaped()));
    }
    const int step = advice.step;
    frame->installEventFilter(
        new ClickFilter(frame, [this, role, step] { Q_EMIT stepActivated(role, step); }));
    text->installEventFilter(
        new ClickFilter(text, [this, role, step] { Q_EMIT stepActivated(role, step); }));
    frame->setCursor(Qt::PointingHandCursor);
    m_rowsLayout->insertWidget(m_rowsLayout->count() - 1, frame);
    m_rows.append(row);
}

QString AdvicePanel::message(int row) const
{
    return row >= 0 && row < m_rows.size() ? m_rows[row].advice.message : QString();
}

QPushButton *AdvicePanel::fixButton(int row) const
{
    return row >= 0 && row < m_rows.size() ? m_rows[row].fix : nullptr;
}

PipelineRole AdvicePanel::role(int row) const
{
    return row >= 0 && row < m_rows.size() ? m_rows[row].role : PipelineRole::Train;
}

} // namespace ifs
