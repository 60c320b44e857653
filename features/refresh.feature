Feature: Session refresh
  Clients keep the RCC dialog alive: OC 2007 re-INVITEs, OC 2007 R2 and Lync send UPDATE, pidgin-sipe
  re-INVITEs and then restarts its CSeq at 1. The gateway answers each without a new session.

  @needs-pbx-sim
  Scenario Outline: <profile> refreshes and keeps working
    Given bob is signed in with <profile>
    When bob refreshes the session
    Then the gateway answers bob's refresh
    And the gateway holds 1 session and 1 PBX monitor
    When bob dials alice
    Then alice's desk phone rings
    And bob saw no protocol violations

    @cap-sign-in-lync2013
    Examples: Lync 2013 (UPDATE)
      | profile  |
      | lync2013 |

    @cap-sign-in-oc2007
    Examples: OC 2007 (re-INVITE)
      | profile  |
      | oc2007   |

    @cap-sign-in-oc2007r2
    Examples: OC 2007 R2 (UPDATE)
      | profile  |
      | oc2007r2 |

    @cap-sign-in-sipe
    Examples: pidgin-sipe (re-INVITE, CSeq restart, no answers to events)
      | profile  |
      | sipe     |
